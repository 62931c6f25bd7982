"""regular items: a product sold at its shop price in a session, not as a flash deal

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-02 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flash_items") as batch:
        batch.add_column(sa.Column("regular", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("flash_items") as batch:
        batch.drop_column("regular")
