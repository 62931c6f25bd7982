"""member prices: a regular item's price per member tier, and each shopper's tier

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flash_items") as batch:
        batch.add_column(sa.Column("member_prices", sa.JSON(), nullable=True))
    op.create_table(
        "member_tiers",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("member_tiers")
    with op.batch_alter_table("flash_items") as batch:
        batch.drop_column("member_prices")
