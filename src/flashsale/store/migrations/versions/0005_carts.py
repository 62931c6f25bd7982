"""carts: cart lines, checkouts and their priced lines

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flashsale.store.tables import UTCDateTime

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cart_lines",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("flash_items.id"), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "item_id"),
    )
    op.create_table(
        "checkouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("subtotal_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("shipping_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_checkouts_user_key"),
    )
    op.create_index("ix_checkouts_user_id", "checkouts", ["user_id"])
    op.create_table(
        "checkout_lines",
        sa.Column("checkout_id", sa.String(length=40), sa.ForeignKey("checkouts.id"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("flash_items.id"), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("checkout_id", "line_no"),
        sa.UniqueConstraint("user_id", "request_id", name="uq_checkout_lines_request"),
    )


def downgrade() -> None:
    op.drop_table("checkout_lines")
    op.drop_index("ix_checkouts_user_id", table_name="checkouts")
    op.drop_table("checkouts")
    op.drop_table("cart_lines")
