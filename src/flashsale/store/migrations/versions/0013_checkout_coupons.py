"""checkout coupons: the coupons a checkout redeems; shop promotions (auto-applying templates)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout_coupons",
        sa.Column("checkout_id", sa.String(length=40), sa.ForeignKey("checkouts.id"), nullable=False),
        sa.Column("coupon_id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.Integer(), sa.ForeignKey("coupon_templates.id"), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("checkout_id", "coupon_id"),
    )
    op.create_index("ix_checkout_coupons_state", "checkout_coupons", ["state"])
    with op.batch_alter_table("coupon_templates") as batch:
        batch.add_column(sa.Column("auto_apply", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("coupon_templates") as batch:
        batch.drop_column("campaign_id")
        batch.drop_column("auto_apply")
    op.drop_index("ix_checkout_coupons_state", table_name="checkout_coupons")
    op.drop_table("checkout_coupons")
