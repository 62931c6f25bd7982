"""free orders: countdown rules, the paid orders each counted, and the winner of each slot

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flashsale.store.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "free_order_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("session_id", sa.Integer(), sa.ForeignKey("flash_sessions.id"), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("flash_items.id"), nullable=True),
        sa.Column("ranks", sa.JSON(), nullable=False),
        sa.Column("first_n", sa.Integer(), nullable=False),
        sa.Column("cap_cents", sa.BigInteger(), nullable=True),
        sa.Column("paid_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_free_order_rules_session_id", "free_order_rules", ["session_id"])
    op.create_table(
        "free_order_entries",
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("free_order_rules.id"), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "order_id"),
    )
    op.create_table(
        "free_order_wins",
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("free_order_rules.id"), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("rebate_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("won_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("rebated_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("rule_id", "slot"),
    )
    op.create_index("ix_free_order_wins_order_id", "free_order_wins", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_free_order_wins_order_id", table_name="free_order_wins")
    op.drop_table("free_order_wins")
    op.drop_table("free_order_entries")
    op.drop_index("ix_free_order_rules_session_id", table_name="free_order_rules")
    op.drop_table("free_order_rules")
