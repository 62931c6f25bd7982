"""Answer the request keys the ledger forgot (retention) from the store, before anything is held again.

A shopper some of whose finished holds the ledger forgot (`Ledger.forget`) hears REQUEST_FORGOTTEN
for every key the ledger does not know: it may name an order stored long ago. The store decides:
an order found under (user, request id) is replayed (or IDEMPOTENCY_MISMATCH for another item or
quantity), and only keys with no stored order are decided by the ledger, told that they were
checked. Without this step, write-behind would grant a forgotten key afresh and the order writer
would drop the new row on the unique (user, request id): an acknowledged order never stored.
Only returning shoppers with unknown keys pay the store read.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashsale.domain.errors import ErrorCode
from flashsale.ledger.contract import Decision
from flashsale.services.deps import Deps
from flashsale.store.repositories import hold_of

_MISMATCH = Decision(None, ErrorCode.IDEMPOTENCY_MISMATCH)


def reserve_recalling(deps: Deps, requests: Sequence[tuple[int, str, int, str]]) -> list[Decision]:
    """`ledger.reserve_many`, with every REQUEST_FORGOTTEN answered from the store (see module doc)."""
    decisions = deps.ledger.reserve_many(requests)
    asked = [j for j, d in enumerate(decisions) if d.code is ErrorCode.REQUEST_FORGOTTEN]
    if not asked:
        return decisions
    with deps.read() as r:
        stored = {j: r.orders.by_key(requests[j][1], requests[j][3]) for j in asked}
    answers = list(decisions)
    unknown = []
    for j in asked:
        order = stored[j]
        item_id, _, qty, _ = requests[j]
        if order is None:
            unknown.append(j)
        elif order.item_id != item_id or order.qty != qty:
            answers[j] = _MISMATCH
        else:
            answers[j] = Decision(hold_of(order), replayed=True)
    if unknown:
        # In order, so a double click of one unknown key is granted once and replayed once.
        checked = deps.ledger.reserve_many([requests[j] for j in unknown], checked=True)
        for j, decision in zip(unknown, checked, strict=True):
            answers[j] = decision
    return answers
