"""Seeding the payments journal with what a bug or a crash could leave there, for the audit to find."""

from __future__ import annotations

from flashsale.bootstrap import Platform
from flashsale.store.tables import PaymentRow


def keep_stray_charge(platform: Platform, order_id: str, amount_cents: int, ref: str = "stray") -> None:
    """Journal a done charge that nobody applied or refunded: money kept for nothing."""
    with platform.deps.uow() as uow:
        uow.db.add(
            PaymentRow(
                order_id=order_id,
                provider="sandbox",
                provider_ref=ref,
                amount_cents=amount_cents,
                kind="charge",
                status="done",
                created_at=platform.deps.now(),
            )
        )
        uow.commit()
