"""engagement: group-buy deals, groups and seats; invite codes, bindings and rewards

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flashsale.store.tables import UTCDateTime

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("flash_items.id"), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("fill_window_s", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_group_deals_item_id", "group_deals", ["item_id"])
    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("deal_id", sa.Integer(), sa.ForeignKey("group_deals.id"), nullable=False),
        sa.Column("leader_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline", UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_groups_deal_id", "groups", ["deal_id"])
    op.create_index("ix_groups_status_deadline", "groups", ["status", "deadline"])
    op.create_table(
        "group_seats",
        sa.Column("group_id", sa.String(length=40), sa.ForeignKey("groups.id"), nullable=False),
        sa.Column("seat", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("claim", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("claimed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "seat"),
        sa.UniqueConstraint("group_id", "user_id", name="uq_group_seats_member"),
    )
    op.create_table(
        "invite_codes",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_table(
        "referral_bindings",
        sa.Column("invitee_id", sa.String(length=64), nullable=False),
        sa.Column("inviter_id", sa.String(length=64), nullable=False),
        sa.Column("pair", sa.String(length=140), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("qualified_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("bound_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invitee_id"),
        sa.UniqueConstraint("pair"),
    )
    op.create_index("ix_referral_bindings_inviter_id", "referral_bindings", ["inviter_id"])
    op.create_index("ix_referral_bindings_status", "referral_bindings", ["status"])
    op.create_table(
        "reward_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=160), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_template", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source"),
    )
    op.create_index("ix_reward_entries_user_id", "reward_entries", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_reward_entries_user_id", table_name="reward_entries")
    op.drop_table("reward_entries")
    op.drop_index("ix_referral_bindings_status", table_name="referral_bindings")
    op.drop_index("ix_referral_bindings_inviter_id", table_name="referral_bindings")
    op.drop_table("referral_bindings")
    op.drop_table("invite_codes")
    op.drop_table("group_seats")
    op.drop_index("ix_groups_status_deadline", table_name="groups")
    op.drop_index("ix_groups_deal_id", table_name="groups")
    op.drop_table("groups")
    op.drop_index("ix_group_deals_item_id", table_name="group_deals")
    op.drop_table("group_deals")
