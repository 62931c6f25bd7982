"""draws: a redeemed goods award records the zero-price order that delivered its prize

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("draw_awards") as batch:
        batch.add_column(sa.Column("order_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("draw_awards") as batch:
        batch.drop_column("order_id")
