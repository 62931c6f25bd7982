"""message segments: a product's category, and waves to a category's buyers or a coupon's unused holders

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
    with op.batch_alter_table("message_waves") as batch:
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
        batch.add_column(sa.Column("coupon_template_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_waves") as batch:
        batch.drop_column("coupon_template_id")
        batch.drop_column("category")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("category")
