"""admission terms per campaign (rate limits, hoarders) and per item (sale token, waiting room, quiz)

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_admission",
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("purchase_per_shopper", sa.String(length=200), nullable=True),
        sa.Column("purchase_per_client", sa.String(length=200), nullable=True),
        sa.Column("hoarder_throttle_after", sa.Integer(), nullable=True),
        sa.Column("hoarder_throttled_limit", sa.Integer(), nullable=False),
        sa.Column("hoarder_block_after", sa.Integer(), nullable=True),
        sa.Column("hoarder_cancel_limit", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.create_table(
        "item_admission",
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("requires_sale_token", sa.Boolean(), nullable=False),
        sa.Column("waiting_room_k", sa.Integer(), nullable=True),
        sa.Column("buy_window_s", sa.Integer(), nullable=False),
        sa.Column("quiz", sa.JSON(), nullable=True),
        sa.Column("quiz_penalty_s", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["flash_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id"),
    )


def downgrade() -> None:
    op.drop_table("item_admission")
    op.drop_table("campaign_admission")
