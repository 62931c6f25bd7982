"""Countdown free orders (免单): operators' rules and winner lists; the count taken in the pay transaction.

The decision is made where the payment is written down (`services/settlement.py`): in the
transaction that moves the order to PAID, `count` gives the order the covering rule's next rank;
a winning rank stores the slot's winner and the settlement journals the rebate as pending in the
same transaction. So an order is counted exactly when it is paid, a slot has exactly one winner
(the key (rule, slot)), and a crash leaves either nothing or a pending rebate that the payment
recovery sends. The store decides on every engine: the stock ledger is not involved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.free_orders import FreeOrderRule, FreeOrderWin, WinStatus
from flashsale.domain.orders import Order
from flashsale.services.catalog import _domain_check as domain_check
from flashsale.services.deps import Deps
from flashsale.store import free_order_repository as repo
from flashsale.store.repositories import from_epoch, get_row
from flashsale.store.tables import FreeOrderRuleRow, ItemRow, SessionRow


@dataclass(frozen=True, slots=True)
class RuleView:
    rule: FreeOrderRule
    paid_count: int  # orders counted so far (the last rank handed out)


def rules_for(db: Session, item_ids: Iterable[int]) -> dict[int, FreeOrderRule]:
    """The rules that count paid orders of these items (item id -> rule), read once for a batch of pays."""
    return repo.rules_covering(db, item_ids)


def count(
    db: Session, orders: Sequence[Order], at: float, rules: Mapping[int, FreeOrderRule] | None = None
) -> list[FreeOrderWin]:
    """Inside the transaction that marks `orders` PAID: take their ranks, in the order given, and
    return the wins among them.

    `rules`: the covering rules as `rules_for` read them in this transaction (read here if None).
    The caller journals each win's rebate and records its event in the same transaction.
    """
    # A zero-price order (a prize) paid nothing: it takes no paying shopper's rank.
    paying = [o for o in orders if o.total_cents != 0]
    if rules is None:
        rules = rules_for(db, {o.item_id for o in paying})
    counted: dict[int, tuple[FreeOrderRule, list[Order]]] = {}  # rule id -> the rule, its orders
    for order in paying:
        rule = rules.get(order.item_id)
        if rule is not None:
            counted.setdefault(rule.id, (rule, []))[1].append(order)
    wins: list[FreeOrderWin] = []
    for rule, mine in counted.values():
        ranks = repo.count_paid_orders(db, rule.id, [o.id for o in mine])
        for order in mine:
            rank = ranks.get(order.id)
            if rank is None or not rule.wins(rank):
                continue
            win = FreeOrderWin(
                rule_id=rule.id, slot=rank, order_id=order.id, user_id=order.user_id,
                item_id=order.item_id, qty=order.qty, rebate_cents=rule.rebate_cents(order.total_cents),
                status=WinStatus.PENDING, won_at=from_epoch(at),
            )  # fmt: skip
            repo.insert_win(db, win)
            wins.append(win)
    return wins


def rebate_sent(db: Session, order_id: str, at: float) -> FreeOrderWin | None:
    """In the transaction that marks the rebate's journal row done: the win moves to REBATED.

    Returns the win as it became, or None when another sender moved it first (record no event).
    """
    before = repo.pending_win(db, order_id)
    if before is None:
        return None
    after = before.rebated(from_epoch(at))
    return after if repo.save_win_transition(db, before, after) else None


class FreeOrders:
    """Operators' free-order rules and their winners; the shopper's view of an order's win."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def create_rule(
        self,
        *,
        name: str,
        session_id: int,
        item_id: int | None = None,
        ranks: Sequence[int] = (),
        first_n: int = 0,
        cap_cents: int | None = None,
    ) -> FreeOrderRule:
        """Create a rule: the orders paid from now on in the session (or of the item) take ranks.

        A rule that would count an order another rule counts is refused (CONFLICT): an order wins
        at most one rebate, and every slot of every rule stays winnable.
        """
        rule = domain_check(
            lambda: FreeOrderRule(0, name, session_id, item_id, tuple(sorted(ranks)), first_n, cap_cents)
        )
        with self.deps.uow() as uow:
            get_row(uow.db, SessionRow, session_id, "session")
            if item_id is not None:
                item = get_row(uow.db, ItemRow, item_id, "item")
                if item.session_id != session_id:
                    raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"item {item_id} is not in this session")
            clash = next((r for r in repo.rules_of_session(uow.db, session_id) if r.overlaps(rule)), None)
            if clash is not None:
                raise FlashSaleError(
                    ErrorCode.CONFLICT, f"free-order rule {clash.id} already counts these orders"
                )
            stored = repo.add_rule(uow.db, rule, self.deps.now())
            uow.commit()
        return stored

    def rules(self) -> list[RuleView]:
        with self.deps.read() as r:
            return [RuleView(rule, n) for rule, n in repo.all_rules(r.db)]

    def winners(self, rule_id: int) -> list[FreeOrderWin]:
        """The rule's winners by slot; NOT_FOUND for an unknown rule."""
        with self.deps.read() as r:
            get_row(r.db, FreeOrderRuleRow, rule_id, "free-order rule")
            return repo.wins_of_rule(r.db, rule_id)

    def wins_of(self, order_ids: Iterable[str]) -> dict[str, FreeOrderWin]:
        """The wins of these orders, by order id (orders that won nothing are absent)."""
        with self.deps.read() as r:
            return repo.wins_of_orders(r.db, order_ids)
