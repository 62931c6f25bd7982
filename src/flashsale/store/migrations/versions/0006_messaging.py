"""messaging: member contacts, opt-outs, templates, waves, the message queue, its delivery log

Revision ID: 0006
Revises: 0009
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flashsale.store.tables import UTCDateTime

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_members",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("tz", sa.String(64), nullable=False),
    )
    op.create_table(
        "message_optouts",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "message_templates",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("locale", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.String(4000), nullable=False),
    )
    op.create_table(
        "message_waves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("segment", sa.String(20), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("send_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True, index=True),
        sa.Column("wave_id", sa.Integer(), nullable=True, index=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_messages_status_due", "messages", ["status", "due_at"])
    op.create_table(
        "message_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False, index=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
    )
    op.create_table(
        "event_cursors",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "event_cursors",
        "message_deliveries",
        "messages",
        "message_waves",
        "message_templates",
        "message_optouts",
        "message_members",
    ):
        op.drop_table(table)
