"""Payment attempts: at most one charge in flight per order, and the pay `Idempotency-Key`.

A pay request first takes the order's charge slot (an attempt row whose UNIQUE `open_order_id`
is the order id while it runs); a second request for the same order finds the slot taken and
waits for the first instead of charging again. An attempt that outlives its lease (its process
died mid-charge) is abandoned, freeing the slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode
from flashsale.domain.payments import AttemptStatus, attempt_is_stale
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import PaymentAttemptRow


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    order_id: str
    status: AttemptStatus
    error_code: ErrorCode | None


def _attempt_of(row: PaymentAttemptRow) -> Attempt:
    code = ErrorCode(row.error_code) if row.error_code else None
    return Attempt(row.id, row.order_id, AttemptStatus(row.status), code)


def _pending(order_id: str, user_id: str, key: str, provider: str, now: datetime) -> dict[str, object]:
    """The row of a new attempt holding the order's charge slot."""
    return {
        "order_id": order_id,
        "user_id": user_id,
        "idempotency_key": key,
        "provider": provider,
        "status": AttemptStatus.PENDING.value,
        "open_order_id": order_id,
        "created_at": now,
    }


class PaymentAttempts:
    """The `payment_attempts` table, as the payment desk uses it."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def find(self, user_id: str, key: str) -> Attempt | None:
        """Return the shopper's attempt made with `key`, if any."""
        with self.deps.read() as r:
            row = r.db.scalar(
                select(PaymentAttemptRow).where(
                    PaymentAttemptRow.user_id == user_id, PaymentAttemptRow.idempotency_key == key
                )
            )
            return None if row is None else _attempt_of(row)

    def open(self, order_id: str, user_id: str, key: str, provider: str) -> int | None:
        """Take the order's charge slot and return the new attempt's id; None while another holds it.

        Also None when another request just recorded the same key: the caller looks it up again.
        """
        for _ in range(2):  # the second pass runs only after a stale attempt was abandoned
            with self.deps.uow() as uow:
                values = _pending(order_id, user_id, key, provider, self.deps.now())
                statement = insert(PaymentAttemptRow).returning(PaymentAttemptRow.id)
                try:
                    attempt_id: int = uow.db.connection().execute(statement, values).scalar_one()
                except IntegrityError:  # the slot (or the key) is taken
                    uow.db.rollback()
                else:
                    uow.commit()
                    return attempt_id
            if not self._abandon_stale(order_id):
                return None
        return None

    def seen_keys(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (user, key) pairs an attempt was made with already."""
        if not keys:
            return set()
        users = {user for user, _ in keys}
        with self.deps.read() as r:
            rows = r.db.execute(
                select(PaymentAttemptRow.user_id, PaymentAttemptRow.idempotency_key).where(
                    PaymentAttemptRow.user_id.in_(users),
                    PaymentAttemptRow.idempotency_key.in_({key for _, key in keys}),
                )
            )
            return {(user, key) for user, key in rows} & set(keys)

    def open_many(self, slots: Sequence[tuple[str, str, str, str]]) -> dict[str, int]:
        """Take the charge slots of many orders in one transaction: (order, user, key, provider) each.

        Return order id -> new attempt id for the slots taken; an order whose slot (or key) was
        taken already is left out, for `open` to wait on one by one. Each order appears once.
        """
        if not slots:
            return {}
        now = self.deps.now()
        values = [_pending(*slot, now) for slot in slots]
        with self.deps.uow() as uow:
            statement = repo.insert_ignoring_duplicates(uow.db, PaymentAttemptRow).returning(
                PaymentAttemptRow.order_id, PaymentAttemptRow.id
            )
            opened = {
                order_id: attempt_id
                for order_id, attempt_id in uow.db.connection().execute(statement, values)
            }
            uow.commit()
        return opened

    def reopen(self, attempt_id: int, order_id: str) -> bool:
        """Retry an abandoned attempt under its own key; True if this caller won the slot."""
        with self.deps.uow() as uow:
            try:
                changed = repo.changed_rows(
                    uow.db,
                    update(PaymentAttemptRow)
                    .where(
                        PaymentAttemptRow.id == attempt_id,
                        PaymentAttemptRow.status == AttemptStatus.ABANDONED.value,
                    )
                    .values(
                        status=AttemptStatus.PENDING.value,
                        open_order_id=order_id,
                        created_at=self.deps.now(),
                        finished_at=None,
                    ),
                )
            except IntegrityError:  # another attempt holds the order's slot
                return False
            uow.commit()
            return bool(changed)

    def finish(self, attempt_id: int, status: AttemptStatus, code: ErrorCode | None = None) -> None:
        """End a pending attempt and free the order's slot (a no-op if it ended already)."""
        with self.deps.uow() as uow:
            uow.db.connection().execute(
                update(PaymentAttemptRow)
                .where(
                    PaymentAttemptRow.id == attempt_id,
                    PaymentAttemptRow.status == AttemptStatus.PENDING.value,
                )
                .values(
                    status=status.value,
                    open_order_id=None,
                    error_code=None if code is None else code.value,
                    finished_at=self.deps.now(),
                )
            )
            uow.commit()

    def settle_open(self, db: Session, *order_ids: str) -> None:
        """Inside the transaction that marks the orders paid: their pending attempts are done."""
        db.connection().execute(
            update(PaymentAttemptRow)
            .where(PaymentAttemptRow.open_order_id.in_(order_ids))
            .values(status=AttemptStatus.DONE.value, open_order_id=None, finished_at=self.deps.now())
        )

    def _abandon_stale(self, order_id: str) -> bool:
        """Free the order's slot if its pending attempt outlived the lease; True if it was freed."""
        with self.deps.uow() as uow:
            row = uow.db.scalar(select(PaymentAttemptRow).where(PaymentAttemptRow.open_order_id == order_id))
            if row is None:
                return True  # it ended between our insert and this look: try again
            if not attempt_is_stale(repo.to_epoch(row.created_at), self.deps.clock()):
                return False
            uow.db.connection().execute(
                update(PaymentAttemptRow)
                .where(
                    PaymentAttemptRow.id == row.id,
                    PaymentAttemptRow.status == AttemptStatus.PENDING.value,
                )
                .values(
                    status=AttemptStatus.ABANDONED.value,
                    open_order_id=None,
                    finished_at=self.deps.now(),
                )
            )
            uow.commit()
            return True
