"""ledger marks per book: a spread item's every bucket counts its own grants, so each gets a mark

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _marks_table(name: str, *key: str) -> None:
    op.create_table(
        name,
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        *(
            [sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False)]
            if "bucket" in key
            else []
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )


def upgrade() -> None:
    # A new primary key: a new table, the marks copied as bucket 0's (every mark so far was one).
    _marks_table("ledger_marks_new", "item_id", "bucket")
    op.execute(
        "INSERT INTO ledger_marks_new (item_id, bucket, seq, order_id) "
        "SELECT item_id, 0, seq, order_id FROM ledger_marks"
    )
    op.drop_table("ledger_marks")
    op.rename_table("ledger_marks_new", "ledger_marks")


def downgrade() -> None:
    # Bucket 0's marks are the items' marks of the layout before; the other buckets' have no place.
    _marks_table("ledger_marks_old", "item_id")
    op.execute(
        "INSERT INTO ledger_marks_old (item_id, seq, order_id) "
        "SELECT item_id, seq, order_id FROM ledger_marks WHERE bucket = 0"
    )
    op.drop_table("ledger_marks")
    op.rename_table("ledger_marks_old", "ledger_marks")
