"""admission: live-hold caps per client address and device, and a hoarder's shorter payment window

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("hoarder_payment_window_s", "holds_per_client", "holds_per_device")


def upgrade() -> None:
    with op.batch_alter_table("campaign_admission") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_admission") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
