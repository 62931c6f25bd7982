"""Admission terms per campaign and per item: stored by operators, read by the buy path from memory.

Operators set them through the admin API (`AdmissionTerms`); every edit is a unit of work that, once
durable, tells the in-memory `AdmissionPolicies` (a catalogue listener, like the shop window), so
this process decides with the new terms at its next request. Other processes (uvicorn workers on the
Redis ledger) reload every `ttl_s` seconds of real time (a monotonic clock, as the price book's:
the injected clock is the sale's time, which a simulation runs faster), as the shop window does. The
buy path never reads the database for them: `policy(item_id)` is a dict lookup. Only the first load
and the one after an edit of this process are read by the caller; the periodic reload runs in a
thread of its own while callers go on with the terms they have, since on a serving worker the caller
is the event loop, and a read of the database there (tens of milliseconds under load) stalled every
request of the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.admission import (
    DEFAULT_BUY_WINDOW_S,
    DEFAULT_QUIZ_PENALTY_S,
    HoarderPolicy,
    HoldCaps,
    ItemAdmission,
    QuizQuestion,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.admission import parse_limits
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import (
    CampaignAdmissionRow,
    CampaignRow,
    ItemAdmissionRow,
    ItemRow,
    SessionRow,
)

log = logging.getLogger(__name__)

POLICY_TTL_S = 1.0
HOARDER_FIELDS = ("throttle_after", "throttled_limit", "block_after", "cancel_limit", "payment_window_s")
CAP_FIELDS = {"holds_per_client": "per_client", "holds_per_device": "per_device"}  # 0 switches one off


@dataclass(frozen=True, slots=True)
class CampaignAdmission:
    """What a campaign asks of every purchase of its items: rate limits and the hoarder policy."""

    campaign_id: int
    purchase_per_shopper: str | None = None
    purchase_per_client: str | None = None
    hoarder: HoarderPolicy = field(default_factory=HoarderPolicy)
    hold_caps: HoldCaps = field(default_factory=HoldCaps)


def _checked(build: Any) -> Any:
    try:
        return build()
    except ValueError as exc:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc


def _campaign_of(row: CampaignAdmissionRow | None, campaign_id: int) -> CampaignAdmission:
    if row is None:
        return CampaignAdmission(campaign_id)
    return CampaignAdmission(
        campaign_id,
        row.purchase_per_shopper,
        row.purchase_per_client,
        HoarderPolicy(
            row.hoarder_throttle_after,
            row.hoarder_throttled_limit,
            row.hoarder_block_after,
            row.hoarder_cancel_limit,
            row.hoarder_payment_window_s,
        ),
        HoldCaps(row.holds_per_client, row.holds_per_device),
    )


def _quiz_of(stored: list[dict[str, Any]] | None) -> tuple[QuizQuestion, ...]:
    return tuple(QuizQuestion(q["question"], tuple(q["choices"]), q["answer"]) for q in stored or ())


def load_policies(db: Session) -> dict[int, ItemAdmission]:
    """Every item's admission terms with its campaign's, in two queries."""
    campaigns = {row.campaign_id: row for row in db.scalars(select(CampaignAdmissionRow))}
    rows = db.execute(
        select(
            ItemRow.id,
            SessionRow.campaign_id,
            SessionRow.starts_at,
            SessionRow.ends_at,
            CampaignRow.rehearsal,
            ItemAdmissionRow,
        )
        .join(SessionRow, ItemRow.session_id == SessionRow.id)
        .join(CampaignRow, SessionRow.campaign_id == CampaignRow.id)
        .outerjoin(ItemAdmissionRow, ItemAdmissionRow.item_id == ItemRow.id)
    )
    policies = {}
    for item_id, campaign_id, starts_at, ends_at, rehearsal, item_row in rows:
        campaign = _campaign_of(campaigns.get(campaign_id), campaign_id)
        policies[item_id] = ItemAdmission(
            item_id=item_id,
            campaign_id=campaign_id,
            opens_at=repo.to_epoch(starts_at),
            closes_at=repo.to_epoch(ends_at),
            requires_sale_token=bool(item_row and item_row.requires_sale_token),
            waiting_room_k=item_row.waiting_room_k if item_row else None,
            buy_window_s=item_row.buy_window_s if item_row else DEFAULT_BUY_WINDOW_S,
            quiz=_quiz_of(item_row.quiz) if item_row else (),
            quiz_penalty_s=item_row.quiz_penalty_s if item_row else DEFAULT_QUIZ_PENALTY_S,
            purchase_per_shopper=campaign.purchase_per_shopper,
            purchase_per_client=campaign.purchase_per_client,
            hoarder=campaign.hoarder,
            hold_caps=campaign.hold_caps,
            rehearsal=rehearsal,
        )
    return policies


class AdmissionPolicies:
    """The admission terms of every item, in memory; see the module doc for how they stay fresh."""

    def __init__(
        self, reads: sessionmaker[Session], clock: Clock = time.monotonic, *, ttl_s: float = POLICY_TTL_S
    ) -> None:
        self._reads = reads
        self._clock = clock
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._policies: dict[int, ItemAdmission] = {}
        self._loaded_at: float | None = None
        self._generation = 0  # bumped by every edit; a load that started before one is stale
        self._loaded_generation = -1
        self._reloader: threading.Thread | None = None  # the last periodic reload's thread

    def invalidate(self) -> None:
        """Forget the terms (after an edit is durable): the next request reloads them."""
        self._generation += 1

    def policy(self, item_id: int) -> ItemAdmission | None:
        """The item's terms, or None for an item unknown here (the ledger then refuses it)."""
        return self._fresh().get(item_id)

    def _fresh(self) -> dict[int, ItemAdmission]:
        now = self._clock()
        loaded_at = self._loaded_at
        if loaded_at is not None and self._loaded_generation == self._generation:
            if not 0 <= now - loaded_at < self.ttl_s:
                self._reload_behind(now)  # only other processes' edits are missing: no caller waits
            return self._policies
        with self._lock:  # one reload; callers behind it find the terms fresh
            if self._loaded_at != loaded_at and self._loaded_generation == self._generation:
                return self._policies
            self._load(now)
            return self._policies

    def _load(self, now: float) -> None:
        """Read every item's terms; call with the lock held. An edit meanwhile leaves them stale."""
        generation = self._generation
        with self._reads() as db:
            self._policies = load_policies(db)
        self._loaded_at, self._loaded_generation = now, generation

    def _reload_behind(self, now: float) -> None:
        """Reload in a thread of its own, unless a reload is already under way."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._reloader = threading.Thread(
                target=self._reload, args=(now,), name="admission-terms", daemon=True
            )
            self._reloader.start()
        except BaseException:
            self._lock.release()
            raise

    def close(self) -> None:
        """Wait for a reload under way (before the database engine it reads from is disposed)."""
        if self._reloader is not None:
            self._reloader.join(timeout=10)

    def _reload(self, now: float) -> None:
        """The periodic reload (the lock is held for it); a failure keeps the terms for another `ttl_s`."""
        try:
            self._load(now)
        except Exception:
            # As the price book does with a down store: the last terms read stand, and are asked
            # for again after ttl_s, not by every request.
            log.warning("reloading the admission terms failed; keeping the last ones", exc_info=True)
            self._loaded_at = now
        finally:
            self._lock.release()


class AdmissionTerms:
    """Operators' commands and reads on admission terms (the admin API's)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def campaign(self, campaign_id: int) -> CampaignAdmission:
        """A campaign's admission terms (the defaults if none were set)."""
        with self.deps.read() as r:
            repo.get_row(r.db, CampaignRow, campaign_id, "campaign")
            return _campaign_of(r.db.get(CampaignAdmissionRow, campaign_id), campaign_id)

    def set_campaign(self, campaign_id: int, **changes: Any) -> CampaignAdmission:
        """Change a campaign's rate limits, hoarder policy or live-hold caps; unnamed fields keep their value.

        `holds_per_client` / `holds_per_device` 0 switch that cap off.
        """
        for name in ("purchase_per_shopper", "purchase_per_client"):
            if changes.get(name) is not None:
                _checked(lambda n=name: parse_limits(changes[n]))
        with self.deps.uow() as uow:
            repo.get_row(uow.db, CampaignRow, campaign_id, "campaign")
            row = uow.db.get(CampaignAdmissionRow, campaign_id)
            current = _campaign_of(row, campaign_id)
            hoarder = {k: changes.pop(k) for k in HOARDER_FIELDS if k in changes}
            caps = {CAP_FIELDS[k]: changes.pop(k) or None for k in list(CAP_FIELDS) if k in changes}
            updated = replace(
                current,
                **changes,
                hoarder=_checked(lambda: replace(current.hoarder, **hoarder)),
                hold_caps=_checked(lambda: replace(current.hold_caps, **caps)),
            )
            if row is None:
                row = CampaignAdmissionRow(campaign_id=campaign_id)
                uow.db.add(row)
            row.purchase_per_shopper = updated.purchase_per_shopper or None
            row.purchase_per_client = updated.purchase_per_client or None
            row.hoarder_throttle_after = updated.hoarder.throttle_after
            row.hoarder_throttled_limit = updated.hoarder.throttled_limit
            row.hoarder_block_after = updated.hoarder.block_after
            row.hoarder_cancel_limit = updated.hoarder.cancel_limit
            row.hoarder_payment_window_s = updated.hoarder.payment_window_s
            row.holds_per_client = updated.hold_caps.per_client
            row.holds_per_device = updated.hold_caps.per_device
            self.deps.catalog_changed(uow.db)
            uow.commit()
            return updated

    def item(self, item_id: int) -> ItemAdmission:
        """An item's admission terms with its campaign's."""
        with self.deps.read() as r:
            repo.get_row(r.db, ItemRow, item_id, "item")
            return load_policies(r.db)[item_id]

    def set_item(self, item_id: int, **changes: Any) -> ItemAdmission:
        """Change an item's sale token, waiting room or quiz; unnamed fields keep their value.

        `waiting_room_k` 0 switches the room off and an empty `quiz` the quiz (None in a PATCH
        means "leave as is"); `quiz` is a sequence of `QuizQuestion`.
        """
        with self.deps.uow() as uow:
            repo.get_row(uow.db, ItemRow, item_id, "item")
            current = load_policies(uow.db)[item_id]
            fields = {k: v for k, v in changes.items() if v is not None}
            if "quiz" in fields:
                fields["quiz"] = tuple(fields["quiz"])
            if fields.get("waiting_room_k") == 0:
                fields["waiting_room_k"] = None  # 0 switches the room off
            updated: ItemAdmission = _checked(lambda: replace(current, **fields))
            row = uow.db.get(ItemAdmissionRow, item_id)
            if row is None:
                row = ItemAdmissionRow(item_id=item_id)
                uow.db.add(row)
            row.requires_sale_token = updated.requires_sale_token
            row.waiting_room_k = updated.waiting_room_k
            row.buy_window_s = updated.buy_window_s
            row.quiz = [
                {"question": q.question, "choices": list(q.choices), "answer": q.answer} for q in updated.quiz
            ] or None
            row.quiz_penalty_s = updated.quiz_penalty_s
            self.deps.catalog_changed(uow.db)
            uow.commit()
            return updated
