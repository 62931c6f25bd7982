"""Draw use cases: pools and prizes (operators); entitlements, draws and redemption (shoppers).

The draw ledger decides (who may draw, what they win, whether a grant goes through); the store
records each decision once, in the same call. Every write is keyed so that a retry heals a crash
between the two: a grant is stored under its (pool, user, grant key), a draw under its (pool, user,
request id), and the ledger answers a repeated key with its first decision, which is then stored
if it was not yet. The in-process ledger is rebuilt from these records at start-up (`restore`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from flashsale.domain.draws import (
    Award,
    AwardStatus,
    EntitlementRule,
    EntitlementSource,
    Game,
    Pool,
    Prize,
    PrizeKind,
    next_streak,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.draws.contract import DrawLedger, GrantRecord, PrizeLevel
from flashsale.services.catalog import _domain_check as domain_check
from flashsale.services.deps import Deps
from flashsale.services.prize_orders import PrizeOrders
from flashsale.store import draw_repository as repo
from flashsale.store.repositories import get_row
from flashsale.store.tables import DrawPoolRow, DrawPrizeRow, ProductRow
from flashsale.store.uow import UnitOfWork


@dataclass(frozen=True)
class GrantOutcome:
    """What a check-in, share, free daily draw or claimed order gave: draws granted now, and the balance."""

    granted: int
    balance: int
    replayed: bool = False
    streak: int | None = None  # a check-in's day in a row


@dataclass(frozen=True)
class DrawOutcome:
    award: Award
    prize: Prize | None  # None: thanks for playing
    balance: int
    replayed: bool


@dataclass(frozen=True)
class PoolView:
    pool: Pool
    prizes: list[Prize]
    levels: list[PrizeLevel]
    day: str


class DrawService:
    def __init__(self, deps: Deps, ledger: DrawLedger, prize_orders: PrizeOrders | None = None) -> None:
        self.deps = deps
        self.ledger = ledger
        self.prize_orders = prize_orders  # None: goods prizes cannot be redeemed (PRIZE_NOT_STOCKED)

    # -- operators ---------------------------------------------------------------------------------
    def create_pool(
        self,
        *,
        name: str,
        game: Game,
        thanks_weight: int,
        utc_offset_min: int,
        rules: Sequence[EntitlementRule],
    ) -> Pool:
        """Create a prize pool (no prizes yet) with at most one entitlement rule per source."""
        if len({r.source for r in rules}) != len(rules):
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "one rule per entitlement source")
        with self.deps.uow() as uow:
            row = DrawPoolRow(
                name=name,
                game=game.value,
                thanks_weight=thanks_weight,
                utc_offset_min=utc_offset_min,
                rules=repo.rules_to_json({r.source: r for r in rules}),
                created_at=self.deps.now(),
            )
            repo.add_rows(uow.db, [row])
            pool = domain_check(lambda: repo.pool_of(row))
            self.ledger.configure(pool.terms([]))
            uow.commit()
        return pool

    def add_prize(
        self,
        pool_id: int,
        *,
        name: str,
        kind: PrizeKind,
        weight: int,
        stock: int,
        daily_cap: int | None = None,
        coupon_template_id: int | None = None,
        product_id: int | None = None,
        points: int | None = None,
    ) -> Prize:
        """Add a prize to a pool; it can be drawn as soon as this returns."""
        with self.deps.uow() as uow:
            pool = repo.load_pool(uow.db, pool_id)
            row = DrawPrizeRow(
                pool_id=pool_id, name=name, kind=kind.value, weight=weight, stock=stock, daily_cap=daily_cap,
                coupon_template_id=coupon_template_id, product_id=product_id, points=points,
            )  # fmt: skip
            # Checked before the row is flushed: a bad prize never reaches the store or the ledger.
            domain_check(
                lambda: Prize(
                    0, pool_id, name, kind, weight, stock, daily_cap, coupon_template_id, product_id, points
                )
            )
            if product_id is not None:
                get_row(uow.db, ProductRow, product_id, "product")  # goods name a product that exists
            repo.add_rows(uow.db, [row])
            prize = repo.prize_of(row)
            self._configure(uow, pool)
            uow.commit()
        return prize

    def update_prize(
        self,
        prize_id: int,
        *,
        weight: int | None = None,
        stock: int | None = None,
        daily_cap: int | None = -1,
    ) -> Prize:
        """Change a prize's odds, stock or daily cap (`daily_cap=None` lifts it; -1 leaves it).

        A stock below what the prize awarded is refused with QUOTA_BELOW_COMMITTED and nothing changes.
        """
        with self.deps.uow() as uow:
            before = repo.load_prize(uow.db, prize_id)
            changes: dict[str, int | None] = {}
            if weight is not None:
                changes["weight"] = weight
            if stock is not None:
                changes["stock"] = stock
            if daily_cap != -1:
                changes["daily_cap"] = daily_cap
            after = domain_check(lambda: replace(before, **changes))  # type: ignore[arg-type]
            row = uow.db.get(DrawPrizeRow, prize_id)
            assert row is not None
            for field, value in changes.items():
                setattr(row, field, value)
            uow.db.flush()
            self._configure(uow, repo.load_pool(uow.db, before.pool_id))
            uow.commit()
        return after

    def _configure(self, uow: UnitOfWork, pool: Pool) -> None:
        """Push the pool's terms as this unit of work has them to the ledger (a refusal rolls it back)."""
        self.ledger.configure(pool.terms(repo.prizes_of(uow.db, pool.id)))

    def list_pools(self) -> list[Pool]:
        with self.deps.read() as read:
            return repo.all_pools(read.db)

    def pool_view(self, pool_id: int) -> PoolView:
        """The pool, its prizes, and how much of each is left today and in total."""
        with self.deps.read() as read:
            pool = repo.load_pool(read.db, pool_id)
            prizes = repo.prizes_of(read.db, pool_id)
        day = pool.day(self.deps.clock())
        return PoolView(pool, prizes, self.ledger.levels(pool_id, day), day)

    def restore(self, *, only_missing: bool = False) -> int:
        """Rebuild the ledger's pools from the store; return how many were written.

        Every pool for the in-process engine at start-up; with `only_missing`, only the pools the
        engine does not know (a shared Redis that lost its data), never overwriting a live one.
        """
        restored = 0
        with self.deps.read() as read:
            for pool in repo.all_pools(read.db):
                terms = pool.terms(repo.prizes_of(read.db, pool.id))
                grants, draws = repo.grant_records(read.db, pool.id), repo.draw_records(read.db, pool.id)
                restored += self.ledger.restore(terms, grants, draws, only_if_absent=only_missing)
        return restored

    # -- entitlements --------------------------------------------------------------------------------
    def balance(self, pool_id: int, user_id: str) -> int:
        with self.deps.read() as read:
            repo.load_pool(read.db, pool_id)
        return self.ledger.balance(pool_id, user_id)

    def check_in(self, pool_id: int, user_id: str) -> GrantOutcome:
        """Check in for today: the rule's draws, plus its bonus on every n-th day in a row; once a day."""
        with self.deps.uow() as uow:
            pool = repo.load_pool(uow.db, pool_id)
            rule = pool.rule(EntitlementSource.CHECKIN)
            day = pool.day(self.deps.clock())
            last = repo.last_checkin(uow.db, pool_id, user_id)
            if last is not None and last[0] == day:
                raise FlashSaleError(ErrorCode.ALREADY_CHECKED_IN, f"checked in on {day} already")
            streak = next_streak(None, 0, day) if last is None else next_streak(last[0], last[1], day)
            outcome = self._grant(
                uow, pool, rule, user_id, f"checkin:{day}", rule.checkin_draws(streak), streak
            )
        if outcome.replayed:
            raise FlashSaleError(ErrorCode.ALREADY_CHECKED_IN, f"checked in on {day} already")
        return outcome

    def share(self, pool_id: int, user_id: str, share_id: str) -> GrantOutcome:
        """Grant the draws of one share; the same share again grants nothing (`replayed`)."""
        return self._grant_by_rule(pool_id, user_id, EntitlementSource.SHARE, lambda _: f"share:{share_id}")

    def free_daily(self, pool_id: int, user_id: str) -> GrantOutcome:
        """Grant today's free draw(s); asking again today grants nothing (`replayed`)."""
        return self._grant_by_rule(
            pool_id, user_id, EntitlementSource.FREE_DAILY, lambda pool: f"free:{pool.day(self.deps.clock())}"
        )

    def claim_order(self, pool_id: int, user_id: str, order_id: str) -> GrantOutcome:
        """Grant the draws a PAID order of the shopper's over the pool's threshold earns, once per order."""
        with self.deps.uow() as uow:
            pool = repo.load_pool(uow.db, pool_id)
            rule = pool.rule(EntitlementSource.PAID_ORDER)
            order = uow.orders.get(order_id)
            if order is None or order.user_id != user_id:
                raise FlashSaleError(ErrorCode.ORDER_NOT_FOUND, f"no order {order_id}")
            if order.status is not OrderStatus.PAID or not rule.order_qualifies(order.total_cents):
                raise FlashSaleError(
                    ErrorCode.NO_ENTITLEMENT,
                    f"only a PAID order of at least {rule.min_order_cents} cents earns a draw here",
                )
            return self._grant(uow, pool, rule, user_id, f"order:{order_id}", rule.draws)

    def _grant_by_rule(
        self, pool_id: int, user_id: str, source: EntitlementSource, key: Callable[[Pool], str]
    ) -> GrantOutcome:
        """Grant the draws of `source`'s rule under the grant key `key` makes of the pool."""
        with self.deps.uow() as uow:
            pool = repo.load_pool(uow.db, pool_id)
            rule = pool.rule(source)
            return self._grant(uow, pool, rule, user_id, key(pool), rule.draws)

    def _grant(
        self,
        uow: UnitOfWork,
        pool: Pool,
        rule: EntitlementRule,
        user_id: str,
        grant_key: str,
        draws: int,
        streak: int | None = None,
    ) -> GrantOutcome:
        """Ask the ledger for the grant, then store it (once) in `uow` and commit."""
        if repo.grant_exists(uow.db, pool.id, user_id, grant_key):
            return GrantOutcome(0, self.ledger.balance(pool.id, user_id), replayed=True, streak=streak)
        day = pool.day(self.deps.clock())
        decision = self.ledger.grant(
            pool_id=pool.id, user_id=user_id, source=rule.source.value, grant_key=grant_key,
            draws=draws, day=day, daily_cap=rule.daily_cap,
        )  # fmt: skip
        if decision.code is not None:
            raise FlashSaleError(
                decision.code, f"no more {rule.source.value} grants today (at most {rule.daily_cap})"
            )
        # A replay here means the ledger granted and the store missed it (a crash, or a twin not yet
        # committed): storing it now is what heals the first case; the twin's insert then skips.
        record = GrantRecord(user_id, rule.source.value, grant_key, draws, day)
        repo.insert_grant(uow.db, record=record, pool_id=pool.id, streak=streak, at=self.deps.now())
        uow.commit()
        return GrantOutcome(decision.granted, decision.balance, decision.replayed, streak)

    # -- draws and awards ----------------------------------------------------------------------------
    def draw(self, pool_id: int, user_id: str, request_id: str) -> DrawOutcome:
        """Spend one draw and record the outcome once; the same request id answers the same outcome."""
        with self.deps.uow() as uow:
            pool = repo.load_pool(uow.db, pool_id)
            stored = repo.find_award(uow.db, pool_id, user_id, request_id)
            replayed = stored is not None
            if stored is None:
                decision = self.ledger.draw(
                    pool_id=pool_id, user_id=user_id, request_id=request_id, day=pool.day(self.deps.clock())
                )
                if decision.code is not None:
                    raise FlashSaleError(decision.code, _DRAW_REFUSALS.get(decision.code))
                assert decision.award_id is not None
                status = AwardStatus.NONE if decision.prize_id is None else AwardStatus.AWARDED
                stored = Award(
                    decision.award_id, pool_id, user_id, request_id, decision.prize_id, status,
                    decision.day, self.deps.now(),
                )  # fmt: skip
                repo.insert_awards(uow.db, [stored])  # a twin's insert of the same decision skips
                replayed = decision.replayed
            prize = None if stored.prize_id is None else repo.load_prize(uow.db, stored.prize_id)
            uow.commit()
        return DrawOutcome(stored, prize, self.ledger.balance(pool_id, user_id), replayed)

    def awards(self, user_id: str, *, limit: int = 50, offset: int = 0) -> list[tuple[Award, Prize | None]]:
        """The shopper's draws, newest first, each with its prize (None: thanks for playing)."""
        with self.deps.read() as read:
            awards = repo.awards_of_user(read.db, user_id, limit=limit, offset=offset)
            prizes = {p: repo.load_prize(read.db, p) for p in {a.prize_id for a in awards} if p is not None}
        return [(a, None if a.prize_id is None else prizes[a.prize_id]) for a in awards]

    def prize(self, prize_id: int | None) -> Prize | None:
        """The prize of an award (None for thanks for playing)."""
        if prize_id is None:
            return None
        with self.deps.read() as read:
            return repo.load_prize(read.db, prize_id)

    def redeem(self, award_id: str, user_id: str) -> Award:
        """Redeem one of the shopper's awards, once: a second redemption is ALREADY_REDEEMED.

        A goods prize is delivered first, as a zero-price order (services/prize_orders.py), and the
        award is redeemed with that order's id; a refusal there (PRIZE_NOT_STOCKED, SOLD_OUT, ...)
        leaves the award AWARDED. Twins and retries deliver the same order, and one marks the award.
        """
        with self.deps.read() as read:
            award = repo.get_award(read.db, award_id)
            prize = None if award.prize_id is None else repo.load_prize(read.db, award.prize_id)
        award.redeem(user_id, self.deps.now())  # refused (not theirs, a loss, redeemed) before any order
        order_id = None
        if prize is not None and prize.kind is PrizeKind.GOODS:
            if self.prize_orders is None:
                raise FlashSaleError(ErrorCode.PRIZE_NOT_STOCKED, "goods prizes are not delivered here")
            assert prize.product_id is not None
            order_id = self.prize_orders.deliver(award, prize.product_id).id
        with self.deps.uow() as uow:
            before = repo.get_award(uow.db, award_id)
            after = before.redeem(user_id, self.deps.now(), order_id)
            if not repo.save_award_transition(uow.db, before, after):
                raise FlashSaleError(ErrorCode.ALREADY_REDEEMED, f"award {award_id} was redeemed already")
            uow.commit()
        return after


_DRAW_REFUSALS = {
    ErrorCode.NO_ENTITLEMENT: "no draw left in this pool: check in, share or buy to earn one",
    ErrorCode.PRIZE_GONE: "every prize is gone for today; your draw is kept",
}
