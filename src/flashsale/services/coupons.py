"""Coupons and red packets: templates, waves, claims, single-use codes, redeem on pay, restore on undo.

The coupon ledger decides (`flashsale.coupons`: issue caps, per-user limits, budgets, all atomic);
the store records each decision before the caller hears of it, and is what the ledger is rebuilt
from at start-up (`load_coupon_ledger`). Should the record fail, the decision is undone in the
ledger (a fresh claim revoked, a fresh redemption restored), so the two never disagree for long: a
claim the shopper was never told of is not counted, and no coupon is left used by an order the
store does not know. A replayed claim writes its row again if it is missing (the first attempt died
between ledger and store), and a restore whose record failed is simply called again.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select

from flashsale.coupons import BudgetLevel, CouponLedger, WaveLevel
from flashsale.domain.coupons import (
    MAX_CLAIMS_PER_USER,
    MAX_WAVE_TOTAL,
    Coupon,
    CouponState,
    CouponTemplate,
    CouponWave,
    WaveTerms,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.deps import Deps
from flashsale.store import coupon_repository as repo
from flashsale.store.tables import CampaignRow, CouponCodeRow, CouponRow, CouponTemplateRow, CouponWaveRow

log = logging.getLogger(__name__)

PROMOTIONS_CACHE_S = 2.0

# Codes are read out over the phone and typed from SMS: no 0/O, 1/I/L. 12 of 31 symbols: 59 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
CODE_REQUEST_PREFIX = "code:"  # a code's claim is idempotent per (user, code)
CSV_COLUMNS = ("code", "wave_id", "template_id", "valid_until", "claimed_by")


def new_code() -> str:
    """A fresh single-use code from the OS's randomness."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True, slots=True)
class OwnedCoupon:
    """A shopper's coupon with the template that says what it is worth."""

    coupon: Coupon
    template: CouponTemplate


@dataclass(frozen=True, slots=True)
class Claimed(OwnedCoupon):
    """A claim's answer: the coupon, and whether it is the replay of an earlier claim."""

    replayed: bool = False


@dataclass(frozen=True, slots=True)
class WaveView:
    wave: CouponWave
    level: WaveLevel
    codes: bool


@dataclass(frozen=True, slots=True)
class CodeView:
    """One single-use code for the CSV export: who claimed it, if anyone."""

    code: str
    wave_id: int
    template_id: int
    valid_until: datetime
    claimed_by: str | None


class CouponService:
    """The coupon use cases; operators' and shoppers' edges call these, never the ledger or the tables."""

    def __init__(self, deps: Deps, ledger: CouponLedger) -> None:
        self.deps = deps
        self.ledger = ledger
        # Templates and whether a wave is a run of codes never change once created: cached, never stale.
        self._code_waves: dict[int, bool] = {}
        self._templates: dict[int, CouponTemplate] = {}
        # Shop promotions in force are read on every cart view: kept a moment (new ones show within it).
        self._promotions: tuple[float, list[tuple[CouponTemplate, int]]] = (-math.inf, [])

    # -- operators ---------------------------------------------------------------------------------
    def create_template(self, template: CouponTemplate) -> CouponTemplate:
        """Store a template (its `id` is ignored) and register its budget with the ledger."""
        with self.deps.uow() as uow:
            row = repo.template_row(template)
            uow.db.add(row)
            uow.db.flush()
            created = replace(template, id=row.id)
            # Before the commit, as the stock ledger's terms: a budget the ledger lacks would refuse redeems.
            self.ledger.configure_budget(created.id, created.budget_cents)
            uow.commit()
            return created

    def create_promotion(self, template: CouponTemplate, campaign_id: int) -> CouponTemplate:
        """Store a shop promotion of a campaign: a template that applies by itself to every cart it fits.

        No shopper claims it: each checkout it applies to is handed a coupon of its own wave (made
        here), so it spends the template's budget as claimed coupons do. One shopper may use it in
        at most `MAX_CLAIMS_PER_USER` checkouts (the wave's per-user limit). Unknown campaign: NOT_FOUND.
        """
        with self.deps.read() as unit:
            if unit.db.get(CampaignRow, campaign_id) is None:
                raise FlashSaleError(ErrorCode.NOT_FOUND, f"no campaign {campaign_id}")
        created = self.create_template(replace(template, auto_apply=True, campaign_id=campaign_id))
        wave = CouponWave(0, created.id, created.valid_from, MAX_WAVE_TOTAL, MAX_CLAIMS_PER_USER)
        self.create_wave(wave)
        self._promotions = (-math.inf, [])
        return created

    def promotions(self) -> list[CouponTemplate]:
        """The shop promotions in force now (read at most every `PROMOTIONS_CACHE_S` seconds)."""
        now = self.deps.now()
        return [t for t, _ in self._promotion_waves() if t.valid_from <= now < t.valid_until]

    def promotions_of(self, campaign_id: int) -> list[tuple[CouponTemplate, BudgetLevel]]:
        """A campaign's shop promotions with what they took off so far."""
        with self.deps.read() as unit:
            rows = unit.db.scalars(
                select(CouponTemplateRow)
                .where(CouponTemplateRow.auto_apply.is_(True), CouponTemplateRow.campaign_id == campaign_id)
                .order_by(CouponTemplateRow.id)
            ).all()
        return [(t, self.ledger.budget_level(t.id)) for t in map(repo.template_of, rows)]

    def claim_promotion(self, *, user_id: str, template_id: int, request_id: str) -> Coupon:
        """Hand a shopper the coupon of a promotion applied to their checkout (idempotent per request)."""
        wave_id = next((w for t, w in self._promotion_waves() if t.id == template_id), None)
        if wave_id is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no promotion {template_id}")
        return self._claim(user_id, wave_id, request_id).coupon

    def _promotion_waves(self) -> list[tuple[CouponTemplate, int]]:
        read_at, known = self._promotions
        if time.monotonic() - read_at < PROMOTIONS_CACHE_S:
            return known
        with self.deps.read() as unit:
            rows = unit.db.execute(
                select(CouponTemplateRow, func.min(CouponWaveRow.id))
                .join(CouponWaveRow, CouponWaveRow.template_id == CouponTemplateRow.id)
                .where(CouponTemplateRow.auto_apply.is_(True))
                .group_by(CouponTemplateRow.id)
                .order_by(CouponTemplateRow.id)
            ).all()
        known = [(repo.template_of(row), wave_id) for row, wave_id in rows]
        self._promotions = (time.monotonic(), known)
        return known

    def templates(self) -> list[tuple[CouponTemplate, BudgetLevel]]:
        """Every template with its budget and what its redeemed coupons took off so far."""
        with self.deps.read() as unit:
            rows = repo.all_templates(unit.db)
        return [(t, self.ledger.budget_level(t.id)) for t in map(repo.template_of, rows)]

    def create_wave(self, wave: CouponWave, *, codes: bool = False) -> WaveView:
        """Open a wave of a template (the wave's `id` is ignored); unknown template: NOT_FOUND."""
        with self.deps.uow() as uow:
            template = repo.template_of(repo.get_template(uow.db, wave.template_id))
            row = CouponWaveRow(
                template_id=wave.template_id,
                starts_at=wave.starts_at,
                ends_at=wave.ends_at,
                total=wave.total,
                per_user_limit=wave.per_user_limit,
                codes=codes,
            )
            uow.db.add(row)
            uow.db.flush()
            wave = replace(wave, id=row.id)
            level = self.ledger.configure_wave(wave.terms(template))
            uow.commit()
        self._code_waves[wave.id] = codes
        return WaveView(wave, level, codes)

    def wave(self, wave_id: int) -> WaveView:
        """A wave with how many of its coupons are issued."""
        with self.deps.read() as unit:
            row = repo.get_wave(unit.db, wave_id)
            return WaveView(repo.wave_of(row), self.ledger.wave_level(wave_id), row.codes)

    def create_codes(self, wave: CouponWave) -> tuple[WaveView, list[str]]:
        """Make `wave.total` single-use codes of its template (one coupon each), as a wave of their own.

        `wave.per_user_limit` is how many codes of the run one shopper may redeem.
        """
        view = self.create_wave(wave, codes=True)
        codes = {new_code() for _ in range(wave.total)}
        while len(codes) < wave.total:  # a clash among 59-bit codes is rare, but then the run is short
            codes.add(new_code())
        with self.deps.uow() as uow:
            repo.add_codes(uow.db, view.wave.id, sorted(codes))
            uow.commit()
        return view, sorted(codes)

    def codes(self, wave_id: int) -> list[CodeView]:
        """Every code of a code wave, for the CSV export."""
        with self.deps.read() as unit:
            wave = repo.get_wave(unit.db, wave_id)
            template = repo.get_template(unit.db, wave.template_id)
            rows = repo.codes_of(unit.db, wave_id)
            return [
                CodeView(r.code, wave_id, wave.template_id, template.valid_until, r.user_id) for r in rows
            ]

    def budget(self, template_id: int) -> BudgetLevel:
        return self.ledger.budget_level(template_id)

    # -- shoppers ----------------------------------------------------------------------------------
    def claim(self, *, user_id: str, wave_id: int, request_id: str) -> Claimed:
        """Claim one coupon of a wave (idempotent per request id); refusals raise FlashSaleError.

        A shop promotion's wave is not claimed by shoppers: it applies by itself at checkout.
        """
        if self._is_code_wave(wave_id):
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"wave {wave_id} is claimed with its codes")
        if any(w == wave_id for _, w in self._promotion_waves()):
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"wave {wave_id} is a shop promotion's")
        return self._claim(user_id, wave_id, request_id)

    def claim_code(self, *, user_id: str, code: str) -> Claimed:
        """Turn a single-use code into the shopper's coupon; the code works once, for one shopper."""
        code = code.strip().upper()
        with self.deps.uow() as uow:
            row = uow.db.get(CouponCodeRow, code)
            if row is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, "no such code")
            # The same shopper again goes on to the ledger, which replays their coupon.
            mine = row.user_id == user_id or (row.user_id is None and repo.take_code(uow.db, code, user_id))
            if not mine:
                raise FlashSaleError(ErrorCode.COUPON_USED, "this code was claimed already")
            # A refusal (not started, the run's per-user limit) raises here and rolls the take back.
            claimed = self._decide(user_id, row.wave_id, CODE_REQUEST_PREFIX + code)
            try:
                repo.insert_coupon(uow.db, claimed.coupon)
                repo.link_code(uow.db, code, claimed.coupon.coupon_id)
                uow.commit()
            except BaseException:
                if not claimed.replayed:
                    self.ledger.revoke(claimed.coupon.coupon_id)
                raise
            return claimed

    def my_coupons(self, user_id: str) -> list[OwnedCoupon]:
        """The shopper's coupons, oldest claim first, each with its template."""
        with self.deps.read() as unit:
            coupons = repo.coupons_where(unit.db, CouponRow.user_id == user_id)
            templates = {t.id: repo.template_of(t) for t in repo.all_templates(unit.db)}
        # A promotion's coupons are the checkouts' business, not coupons the shopper holds.
        return [
            OwnedCoupon(c, templates[c.template_id])
            for c in coupons
            if not templates[c.template_id].auto_apply
        ]

    # -- the order path ----------------------------------------------------------------------------
    def redeem(self, *, user_id: str, coupon_id: str, order_id: str, discount_cents: int) -> Coupon:
        """Use the shopper's coupon for an order (on pay), taking `discount_cents` from the budget.

        Idempotent per order. Refusals: UNKNOWN_COUPON (not the shopper's), COUPON_USED,
        COUPON_EXPIRED, BUDGET_EXHAUSTED; each changes nothing.
        """
        before = self.ledger.get(coupon_id)
        if before is None or before.user_id != user_id:
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no coupon {coupon_id!r} of this shopper")
        coupon = self.ledger.redeem(coupon_id, order_id=order_id, discount_cents=discount_cents)
        try:
            self._save(coupon)
        except BaseException:
            if before.state is not CouponState.REDEEMED:  # a replay's redemption was stored before
                self.ledger.restore(coupon_id, order_id=order_id)
            raise
        return coupon

    def restore(self, *, coupon_id: str, order_id: str) -> Coupon:
        """Give the coupon back after its order was cancelled, expired or refunded (usable while valid).

        Idempotent; the budget gets the discount back once. Only `order_id`'s redemption is undone.
        """
        coupon = self.ledger.restore(coupon_id, order_id=order_id)
        self._save(coupon)
        return coupon

    # -- inside ------------------------------------------------------------------------------------
    def _is_code_wave(self, wave_id: int) -> bool:
        known = self._code_waves.get(wave_id)
        if known is None:
            with self.deps.read() as unit:
                row = unit.db.get(CouponWaveRow, wave_id)
            if row is None:
                return False  # the ledger refuses an unknown wave itself
            known = self._code_waves[wave_id] = row.codes
        return known

    def template(self, template_id: int) -> CouponTemplate:
        """A template (cached: templates never change once created)."""
        return self._template(template_id)

    def _template(self, template_id: int) -> CouponTemplate:
        known = self._templates.get(template_id)
        if known is None:
            with self.deps.read() as unit:
                known = repo.template_of(repo.get_template(unit.db, template_id))
            self._templates[template_id] = known
        return known

    def _decide(self, user_id: str, wave_id: int, request_id: str) -> Claimed:
        decision = self.ledger.claim(wave_id=wave_id, user_id=user_id, request_id=request_id)
        if decision.coupon is None:
            assert decision.code is not None
            raise FlashSaleError(decision.code, _CLAIM_REFUSALS.get(decision.code))
        return Claimed(decision.coupon, self._template(decision.coupon.template_id), decision.replayed)

    def _claim(self, user_id: str, wave_id: int, request_id: str) -> Claimed:
        claimed = self._decide(user_id, wave_id, request_id)
        try:
            with self.deps.uow() as uow:
                repo.insert_coupon(uow.db, claimed.coupon)  # a replay's row may be missing: written now
                uow.commit()
        except BaseException:
            if not claimed.replayed:
                self.ledger.revoke(claimed.coupon.coupon_id)
            raise
        return claimed

    def _save(self, coupon: Coupon) -> None:
        with self.deps.uow() as uow:
            repo.save_coupon(uow.db, coupon)
            uow.commit()


_CLAIM_REFUSALS = {
    ErrorCode.COUPON_NOT_STARTED: "this coupon is not handed out yet",
    ErrorCode.COUPON_CLAIM_CLOSED: "this coupon is no longer handed out",
    ErrorCode.COUPON_LIMIT: "you hold as many of these coupons as allowed",
    ErrorCode.COUPON_ISSUE_EXHAUSTED: "every coupon of this wave is claimed",
    ErrorCode.UNKNOWN_COUPON: "no such coupon wave",
    ErrorCode.IDEMPOTENCY_MISMATCH: "this request id was used for another coupon",
}


def codes_csv(codes: list[CodeView]) -> str:
    """A run of codes as CSV, header first (the admin route's and `flashsale coupons codes`' export)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in codes:
        writer.writerow((c.code, c.wave_id, c.template_id, c.valid_until.isoformat(), c.claimed_by or ""))
    return out.getvalue()


def load_coupon_ledger(deps: Deps, ledger: CouponLedger, *, only_if_empty: bool) -> bool:
    """Load every wave, budget and coupon from the store into the ledger (at start-up); return whether it did.

    A shared (Redis) ledger is loaded only when it holds nothing yet: the processes that decided on
    it are ahead of the store. One that holds less than the store (restarted on a stale AOF) is
    reported in the log; `flashsale coupons reload` replaces it with the store's state.
    """
    with deps.read() as unit:
        waves = repo.all_wave_terms(unit.db)
        budgets = [(t.id, t.budget_cents) for t in repo.all_templates(unit.db)]
        coupons = repo.coupons_where(unit.db)
    loaded = ledger.load(waves, budgets, coupons, only_if_empty=only_if_empty)
    if not loaded:
        behind = waves_behind_store(ledger, waves, coupons)
        if behind:
            log.error(
                "the coupon ledger holds fewer claims than the store for waves %s (it lost writes); "
                "run `flashsale coupons reload` while no claims are being made",
                behind,
            )
    return loaded


def waves_behind_store(ledger: CouponLedger, waves: list[WaveTerms], coupons: list[Coupon]) -> list[int]:
    """The waves whose issued count in the ledger is below the coupons the store holds of them."""
    stored = Counter(c.wave_id for c in coupons)
    return [w.wave_id for w in waves if ledger.wave_level(w.wave_id).issued < stored[w.wave_id]]
