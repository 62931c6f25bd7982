"""draws: prize pools, prizes, entitlement grants, awards and scheduled draws

Revision ID: 0007
Revises: 0010
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "draw_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("game", sa.String(length=20), nullable=False),
        sa.Column("thanks_weight", sa.BigInteger(), nullable=False),
        sa.Column("utc_offset_min", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "draw_prizes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("draw_pools.id"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("coupon_template_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), sa.ForeignKey("products.id"), nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_draw_prizes_pool_id", "draw_prizes", ["pool_id"])
    op.create_table(
        "draw_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("draw_pools.id"), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("grant_key", sa.String(length=255), nullable=False),
        sa.Column("draws", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool_id", "user_id", "grant_key", name="uq_draw_grants_key"),
    )
    op.create_index("ix_draw_grants_pool_id", "draw_grants", ["pool_id"])
    op.create_table(
        "scheduled_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("draw_pools.id"), nullable=False),
        sa.Column("prize_id", sa.Integer(), sa.ForeignKey("draw_prizes.id"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("run_at", UTC_DATETIME, nullable=False),
        sa.Column("winners", sa.Integer(), nullable=False),
        sa.Column("min_order_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("entrants", sa.JSON(), nullable=True),
        sa.Column("winner_ids", sa.JSON(), nullable=True),
        sa.Column("ran_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_scheduled_draws_pool_id", "scheduled_draws", ["pool_id"])
    op.create_table(
        "draw_awards",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("draw_pools.id"), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("prize_id", sa.Integer(), sa.ForeignKey("draw_prizes.id"), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("scheduled_draw_id", sa.Integer(), sa.ForeignKey("scheduled_draws.id"), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("redeemed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool_id", "user_id", "request_id", name="uq_draw_awards_request"),
    )
    op.create_index("ix_draw_awards_pool_id", "draw_awards", ["pool_id"])
    op.create_index("ix_draw_awards_user", "draw_awards", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("draw_awards")
    op.drop_table("scheduled_draws")
    op.drop_table("draw_grants")
    op.drop_table("draw_prizes")
    op.drop_table("draw_pools")
