from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.memory import MemoryLedger


def test_a_hold_not_paid_in_time_returns_to_the_quota() -> None:
    clock = ManualClock(1000.0)
    ledger = MemoryLedger(clock)
    ledger.configure(ItemTerms(1, quota=1, per_user_limit=1, opens_at=0, closes_at=2000, hold_ttl_s=60))
    first = ledger.reserve(item_id=1, user_id="a", qty=1, request_id="r")
    assert first.granted
    assert ledger.reserve(item_id=1, user_id="b", qty=1, request_id="r").code is ErrorCode.SOLD_OUT
    clock.advance(60)
    assert ledger.reserve(item_id=1, user_id="b", qty=1, request_id="r").granted
    assert [h.hold_id for h in ledger.expire_due()] == [first.hold.hold_id]
    assert ledger.stock(1).conserved
