"""Free-order rules, their counted orders and their winners: rows <-> domain objects, and the queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from flashsale.domain.free_orders import FreeOrderRule, FreeOrderWin, WinStatus
from flashsale.store.repositories import changed_rows
from flashsale.store.tables import FreeOrderEntryRow, FreeOrderRuleRow, FreeOrderWinRow, ItemRow


def rule_of(row: FreeOrderRuleRow) -> FreeOrderRule:
    return FreeOrderRule(
        id=row.id,
        name=row.name,
        session_id=row.session_id,
        item_id=row.item_id,
        ranks=tuple(row.ranks),
        first_n=row.first_n,
        cap_cents=row.cap_cents,
    )


def win_of(row: FreeOrderWinRow) -> FreeOrderWin:
    return FreeOrderWin(
        rule_id=row.rule_id,
        slot=row.slot,
        order_id=row.order_id,
        user_id=row.user_id,
        item_id=row.item_id,
        qty=row.qty,
        rebate_cents=row.rebate_cents,
        status=WinStatus(row.status),
        won_at=row.won_at,
        rebated_at=row.rebated_at,
    )


def rules_of_session(db: Session, session_id: int) -> list[FreeOrderRule]:
    of_session = FreeOrderRuleRow.session_id == session_id
    rows = db.scalars(select(FreeOrderRuleRow).where(of_session).order_by(FreeOrderRuleRow.id))
    return [rule_of(r) for r in rows]


def all_rules(db: Session) -> list[tuple[FreeOrderRule, int]]:
    """Every rule with the last rank it handed out."""
    rows = db.scalars(select(FreeOrderRuleRow).order_by(FreeOrderRuleRow.id))
    return [(rule_of(r), r.paid_count) for r in rows]


def rules_covering(db: Session, item_ids: Iterable[int]) -> dict[int, FreeOrderRule]:
    """The rule that counts paid orders of each item (rules never overlap; the oldest if they did):
    item id -> its rule, for the items that have one, in one query."""
    rows = db.execute(
        select(ItemRow.id, FreeOrderRuleRow)
        .join(ItemRow, ItemRow.session_id == FreeOrderRuleRow.session_id)
        .where(
            ItemRow.id.in_(set(item_ids)),
            (FreeOrderRuleRow.item_id.is_(None)) | (FreeOrderRuleRow.item_id == ItemRow.id),
        )
        .order_by(FreeOrderRuleRow.id)
    ).all()
    rules: dict[int, FreeOrderRule] = {}
    for item_id, row in rows:
        rules.setdefault(item_id, rule_of(row))
    return rules


def count_paid_orders(db: Session, rule_id: int, order_ids: Sequence[str]) -> dict[str, int]:
    """Give each paid order the rule has not counted yet its next rank, in the order given, once.

    Returns order id -> rank for the orders counted now (an order counted before gets none). The
    UPDATE … RETURNING raises the counter by the batch's size under the rule row's lock (PostgreSQL)
    or the one writer (SQLite), so concurrent payments get distinct ranks; the entries' key (rule,
    order) refuses a second rank for the same order, and all roll back with the payment if it fails.
    """
    counted = set(
        db.scalars(
            select(FreeOrderEntryRow.order_id).where(
                FreeOrderEntryRow.rule_id == rule_id, FreeOrderEntryRow.order_id.in_(set(order_ids))
            )
        )
    )
    fresh = list(dict.fromkeys(o for o in order_ids if o not in counted))
    if not fresh:
        return {}
    conn = db.connection()
    last: int = conn.execute(
        update(FreeOrderRuleRow)
        .where(FreeOrderRuleRow.id == rule_id)
        .values(paid_count=FreeOrderRuleRow.paid_count + len(fresh))
        .returning(FreeOrderRuleRow.paid_count)
    ).scalar_one()
    ranks = {order_id: last - len(fresh) + n for n, order_id in enumerate(fresh, start=1)}
    conn.execute(
        insert(FreeOrderEntryRow),
        [{"rule_id": rule_id, "order_id": o, "rank": rank} for o, rank in ranks.items()],
    )
    return ranks


def insert_win(db: Session, win: FreeOrderWin) -> None:
    """Store the winner of a slot; a second winner of the same slot violates the key (and rolls back)."""
    db.add(
        FreeOrderWinRow(
            rule_id=win.rule_id, slot=win.slot, order_id=win.order_id, user_id=win.user_id,
            item_id=win.item_id, qty=win.qty, rebate_cents=win.rebate_cents, status=win.status.value,
            won_at=win.won_at, rebated_at=win.rebated_at,
        )
    )  # fmt: skip
    db.flush()


def pending_win(db: Session, order_id: str) -> FreeOrderWin | None:
    """The order's win whose rebate is not sent yet, if any."""
    row = db.scalars(
        select(FreeOrderWinRow).where(
            FreeOrderWinRow.order_id == order_id, FreeOrderWinRow.status == WinStatus.PENDING.value
        )
    ).first()
    return None if row is None else win_of(row)


def save_win_transition(db: Session, before: FreeOrderWin, after: FreeOrderWin) -> bool:
    """Compare-and-set a win's status: of two racing senders exactly one changes the row."""
    statement = (
        update(FreeOrderWinRow)
        .where(
            FreeOrderWinRow.rule_id == before.rule_id,
            FreeOrderWinRow.slot == before.slot,
            FreeOrderWinRow.status == before.status.value,
        )
        .values(status=after.status.value, rebated_at=after.rebated_at)
    )
    return changed_rows(db, statement) > 0


def wins_of_rule(db: Session, rule_id: int) -> list[FreeOrderWin]:
    rows = db.scalars(
        select(FreeOrderWinRow).where(FreeOrderWinRow.rule_id == rule_id).order_by(FreeOrderWinRow.slot)
    )
    return [win_of(r) for r in rows]


def wins_of_orders(db: Session, order_ids: Iterable[str]) -> dict[str, FreeOrderWin]:
    ids = list(order_ids)
    if not ids:
        return {}
    rows = db.scalars(select(FreeOrderWinRow).where(FreeOrderWinRow.order_id.in_(ids)))
    return {r.order_id: win_of(r) for r in rows}


def add_rule(db: Session, rule: FreeOrderRule, at: datetime) -> FreeOrderRule:
    """Insert a rule (its id is ignored) and return it with the id it got."""
    row = FreeOrderRuleRow(
        name=rule.name, session_id=rule.session_id, item_id=rule.item_id, ranks=list(rule.ranks),
        first_n=rule.first_n, cap_cents=rule.cap_cents, paid_count=0, created_at=at,
    )  # fmt: skip
    db.add(row)
    db.flush()
    return rule_of(row)
