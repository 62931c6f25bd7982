"""coupons: templates, waves, claimed coupons, single-use codes; product costs for the margin check

Revision ID: 0004
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flashsale.store.tables

revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_TIME = flashsale.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("off_cents", sa.BigInteger(), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("min_spend_cents", sa.BigInteger(), nullable=False),
        sa.Column("cap_cents", sa.BigInteger(), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=True),
        sa.Column("product_ids", sa.JSON(), nullable=True),
        sa.Column("valid_from", UTC_TIME, nullable=False),
        sa.Column("valid_until", UTC_TIME, nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=True),
        sa.Column("stack_group", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "coupon_waves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTC_TIME, nullable=False),
        sa.Column("ends_at", UTC_TIME, nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("per_user_limit", sa.Integer(), nullable=False),
        sa.Column("codes", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["coupon_templates.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_coupon_waves_template_id", "coupon_waves", ["template_id"])
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", UTC_TIME, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["coupon_templates.id"]),
        sa.ForeignKeyConstraint(["wave_id"], ["coupon_waves.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "request_id", name="uq_coupons_user_request"),
    )
    op.create_index("ix_coupons_wave_id", "coupons", ["wave_id"])
    op.create_index("ix_coupons_template_id", "coupons", ["template_id"])
    op.create_index("ix_coupons_user_id", "coupons", ["user_id"])
    op.create_table(
        "coupon_codes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("coupon_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["wave_id"], ["coupon_waves.id"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_coupon_codes_wave_id", "coupon_codes", ["wave_id"])
    with op.batch_alter_table("products") as batch_op:
        batch_op.add_column(sa.Column("cost_cents", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("shipping_cost_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("platform_fee_bp", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_column("platform_fee_bp")
        batch_op.drop_column("shipping_cost_cents")
        batch_op.drop_column("cost_cents")
    op.drop_table("coupon_codes")
    op.drop_table("coupons")
    op.drop_table("coupon_waves")
    op.drop_table("coupon_templates")
