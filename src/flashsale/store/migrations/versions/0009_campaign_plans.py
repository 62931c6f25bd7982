"""campaign plans: the operator's forecast per session, KPI targets and marketing channels

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_forecasts",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shoppers", sa.Integer(), nullable=False),
        sa.Column("span_s", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["flash_sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_table(
        "campaign_targets",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kpi", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "kpi"),
    )
    op.create_table(
        "campaign_channels",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=False),
        sa.Column("spend_cents", sa.BigInteger(), nullable=False),
        sa.Column("attributed_orders", sa.Integer(), nullable=False),
        sa.Column("attributed_gmv_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "name"),
    )


def downgrade() -> None:
    op.drop_table("campaign_channels")
    op.drop_table("campaign_targets")
    op.drop_table("session_forecasts")
