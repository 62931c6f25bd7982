"""payment attempts (one charge in flight per order, pay idempotency keys); orders by time;
stored terms brought inside the bounds the domain now enforces

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flashsale.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_order_id", sa.String(length=40), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", flashsale.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", flashsale.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_order_id"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_payment_attempts_user_key"),
    )
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_attempts_order_id"), ["order_id"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_created_at", ["created_at"], unique=False)
    # Rows written before the bounds existed would no longer load as domain objects (the domain
    # refuses them), so clamp them once: payment windows to 60 s..24 h, per-user limits to 1000.
    op.execute("UPDATE campaigns SET payment_window_s = 60 WHERE payment_window_s < 60")
    op.execute("UPDATE campaigns SET payment_window_s = 86400 WHERE payment_window_s > 86400")
    op.execute("UPDATE flash_items SET per_user_limit = 1000 WHERE per_user_limit > 1000")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_created_at")
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_attempts_order_id"))
    op.drop_table("payment_attempts")
