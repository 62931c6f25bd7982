"""Operators' commands: create and change campaigns, sessions, products and flash items.

Every edit of an item's terms is sent to the ledger before it commits (services/ledger_terms.py);
the reads operators make are in services/catalog_views.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flashsale.domain.campaign import (
    DEFAULT_PAYMENT_WINDOW_S,
    Campaign,
    DailySlot,
    FlashSession,
    Phase,
    daily_session_windows,
)
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import FlashItem
from flashsale.services.deps import Deps
from flashsale.services.ledger_terms import push_terms
from flashsale.store import repositories as repo
from flashsale.store.tables import CampaignRow, ItemRow, PhaseRow, ProductRow, SessionRow

T = TypeVar("T")

MAX_SESSIONS_PER_CALL = 1000  # a year of three daily slots; more is a typo, not a campaign


def _domain_check(build: Callable[[], T]) -> T:
    """Turn a domain ValueError into a typed VALIDATION_ERROR."""
    try:
        return build()
    except ValueError as exc:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc


class CatalogService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # -- campaigns -----------------------------------------------------------------------------
    def create_campaign(
        self,
        *,
        name: str,
        theme: str,
        starts_at: datetime,
        ends_at: datetime,
        phases: Iterable[Phase] = (),
        payment_window_s: int = DEFAULT_PAYMENT_WINDOW_S,
        rehearsal: bool = False,
    ) -> Campaign:
        """Create a campaign with its phases (`rehearsal`: a load rehearsal's hidden copy)."""
        phases = tuple(phases)
        _domain_check(lambda: Campaign(0, name, theme, starts_at, ends_at, phases, payment_window_s))
        with self.deps.uow() as uow:
            row = CampaignRow(
                name=name,
                theme=theme,
                starts_at=starts_at,
                ends_at=ends_at,
                payment_window_s=payment_window_s,
                rehearsal=rehearsal,
            )
            uow.db.add(row)
            uow.db.flush()
            uow.db.add_all(
                PhaseRow(campaign_id=row.id, kind=p.kind.value, starts_at=p.starts_at, ends_at=p.ends_at)
                for p in phases
            )
            campaign = repo.campaign_with_phases(uow.db, row)
            uow.commit()
            return campaign

    def update_campaign(self, campaign_id: int, **changes: Any) -> Campaign:
        """Change a campaign's fields (and phases); a new payment window applies to new holds."""
        with self.deps.uow() as uow:
            row = repo.get_row(uow.db, CampaignRow, campaign_id, "campaign")
            current = repo.campaign_with_phases(uow.db, row)
            phases = tuple(changes.pop("phases", current.phases))
            fields = {k: v for k, v in changes.items() if v is not None}
            updated = _domain_check(
                lambda: Campaign(
                    id=row.id,
                    name=fields.get("name", current.name),
                    theme=fields.get("theme", current.theme),
                    starts_at=fields.get("starts_at", current.starts_at),
                    ends_at=fields.get("ends_at", current.ends_at),
                    phases=phases,
                    payment_window_s=fields.get("payment_window_s", current.payment_window_s),
                    rehearsal=current.rehearsal,
                )
            )
            for key, value in fields.items():
                setattr(row, key, value)
            for old in uow.db.scalars(select(PhaseRow).where(PhaseRow.campaign_id == row.id)):
                uow.db.delete(old)
            uow.db.flush()
            uow.db.add_all(
                PhaseRow(campaign_id=row.id, kind=p.kind.value, starts_at=p.starts_at, ends_at=p.ends_at)
                for p in phases
            )
            push_terms(self.deps, uow.db, campaign_id=row.id)
            uow.commit()
            return updated

    # -- sessions ------------------------------------------------------------------------------
    def create_session(
        self, *, campaign_id: int, name: str, starts_at: datetime, ends_at: datetime
    ) -> FlashSession:
        """Add one flash session inside the campaign's time range."""
        return self.create_sessions(campaign_id, [(name, starts_at, ends_at)])[0]

    def create_daily_sessions(self, campaign_id: int, slots: Iterable[DailySlot]) -> list[FlashSession]:
        """Add a session for every slot (e.g. 10:00–10:10, 15:00–15:10) on every campaign day."""
        with self.deps.read() as r:
            campaign = repo.load_campaign(r.db, campaign_id)
        windows = _domain_check(lambda: daily_session_windows(campaign, slots, limit=MAX_SESSIONS_PER_CALL))
        if len(windows) > MAX_SESSIONS_PER_CALL:
            raise FlashSaleError(
                ErrorCode.VALIDATION_ERROR,
                f"more than {MAX_SESSIONS_PER_CALL} sessions requested in one call",
            )
        return self.create_sessions(campaign_id, windows)

    def create_sessions(
        self, campaign_id: int, windows: Iterable[tuple[str, datetime, datetime]]
    ) -> list[FlashSession]:
        with self.deps.uow() as uow:
            campaign = repo.load_campaign(uow.db, campaign_id)
            rows = []
            for name, starts_at, ends_at in windows:
                _domain_check(partial(FlashSession, 0, campaign_id, name, starts_at, ends_at))
                if starts_at < campaign.starts_at or ends_at > campaign.ends_at:
                    raise FlashSaleError(
                        ErrorCode.VALIDATION_ERROR, f"session {name!r} lies outside the campaign"
                    )
                rows.append(
                    SessionRow(campaign_id=campaign_id, name=name, starts_at=starts_at, ends_at=ends_at)
                )
            uow.db.add_all(rows)
            uow.db.flush()
            sessions = [repo.session_of(r) for r in rows]
            self.deps.catalog_changed(uow.db)
            uow.commit()
            return sessions

    def update_session(self, session_id: int, **changes: Any) -> FlashSession:
        """Move or rename a session; its items' sale window follows at once."""
        with self.deps.uow() as uow:
            row = repo.get_row(uow.db, SessionRow, session_id, "session")
            campaign = uow.db.get(CampaignRow, row.campaign_id)
            for key, value in changes.items():
                if value is not None:
                    setattr(row, key, value)
            session = _domain_check(lambda: repo.session_of(row))
            if campaign is not None and (
                row.starts_at < campaign.starts_at or row.ends_at > campaign.ends_at
            ):
                raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "session lies outside the campaign")
            uow.db.flush()
            push_terms(self.deps, uow.db, session_id=row.id)
            uow.commit()
            return session

    # -- products and items --------------------------------------------------------------------
    def create_product(
        self, *, sku: str, name: str, list_price_cents: int, stock: int, category: str | None = None
    ) -> Product:
        """Create a product (its SKU must be new), in a category if given."""
        _domain_check(lambda: Product(0, sku, name, list_price_cents, stock, category))
        with self.deps.uow() as uow:
            row = ProductRow(
                sku=sku, name=name, list_price_cents=list_price_cents, stock=stock, category=category
            )
            uow.db.add(row)
            self._flush_unique(uow.db, f"a product with SKU {sku!r} exists")
            product = repo.product_of(row)
            uow.commit()
            return product

    def update_product(
        self, product_id: int, *, allow_above_list_price: bool = False, **changes: Any
    ) -> Product:
        """Change a product; a list price below the flash price of a live item needs the override."""
        with self.deps.uow() as uow:
            row = repo.get_row(uow.db, ProductRow, product_id, "product")
            before = repo.product_of(row)
            # Read before the row changes, so the query's autoflush cannot write a half-checked edit.
            live = self._live_flash_prices(uow.db, product_id)
            for key, value in changes.items():
                if value is not None:
                    setattr(row, key, value)
            product = _domain_check(lambda: repo.product_of(row))
            _domain_check(
                lambda: before.check_list_price_change(
                    product.list_price_cents, live, allow_above_list_price=allow_above_list_price
                )
            )
            self._flush_unique(uow.db, "a product with that SKU exists")
            self.deps.prices.invalidate()
            self.deps.catalog_changed(uow.db)
            uow.commit()
            return product

    def create_item(
        self,
        *,
        session_id: int,
        product_id: int,
        flash_price_cents: int,
        quota: int,
        per_user_limit: int = 1,
        coupons_allowed: bool = False,
        allow_above_list_price: bool = False,
        regular: bool = False,
        member_prices: Mapping[str, int] | None = None,
    ) -> FlashItem:
        """Offer `quota` units of a product in a session at a flash price; the ledger learns of it at once.

        A flash price above the product's list price is refused unless `allow_above_list_price`.
        A `regular` item is the product at its shop price (`flash_price_cents`), coupons allowed,
        and may have `member_prices` per member tier.
        """
        tiers = tuple(sorted((member_prices or {}).items()))
        coupons_allowed = coupons_allowed or regular
        with self.deps.uow() as uow:
            repo.get_row(uow.db, SessionRow, session_id, "session")
            product = repo.get_row(uow.db, ProductRow, product_id, "product")
            item = _domain_check(
                lambda: FlashItem(
                    0,
                    session_id,
                    product_id,
                    flash_price_cents,
                    quota,
                    per_user_limit,
                    coupons_allowed,
                    regular,
                    tiers,
                )
            )
            _domain_check(
                lambda: repo.product_of(product).check_flash_price(
                    flash_price_cents, allow_above_list_price=allow_above_list_price
                )
            )
            self._check_quota_fits_stock(item.quota, product)
            row = ItemRow(
                session_id=session_id,
                product_id=product_id,
                flash_price_cents=flash_price_cents,
                quota=quota,
                per_user_limit=per_user_limit,
                coupons_allowed=coupons_allowed,
                regular=regular,
                member_prices=dict(tiers) or None,
            )
            uow.db.add(row)
            self._flush_unique(uow.db, "this product is already on sale in that session")
            push_terms(self.deps, uow.db, item_id=row.id)
            uow.commit()
            return repo.item_of(row)

    def update_item(self, item_id: int, *, allow_above_list_price: bool = False, **changes: Any) -> FlashItem:
        """Change price, quota, limit or stacking; a quota below what is held+sold is refused.

        A new flash price above the list price needs `allow_above_list_price`; an unchanged one was
        accepted when it was set (with the override, or before the list price was lowered with it).
        """
        with self.deps.uow() as uow:
            row = repo.get_row(uow.db, ItemRow, item_id, "item")
            product = repo.get_row(uow.db, ProductRow, row.product_id, "product")
            for key, value in changes.items():
                if value is not None:
                    setattr(row, key, value)
            item = _domain_check(lambda: repo.item_of(row))
            if changes.get("flash_price_cents") is not None:
                _domain_check(
                    lambda: repo.product_of(product).check_flash_price(
                        item.flash_price_cents, allow_above_list_price=allow_above_list_price
                    )
                )
            self._check_quota_fits_stock(item.quota, product)
            uow.db.flush()
            push_terms(self.deps, uow.db, item_id=row.id)
            uow.commit()
            return item

    # -- helpers -------------------------------------------------------------------------------
    def _live_flash_prices(self, db: Session, product_id: int) -> dict[int, int]:
        """Map each item of the product whose session has not ended to its flash price."""
        rows = db.execute(
            select(ItemRow.id, ItemRow.flash_price_cents)
            .join(SessionRow, ItemRow.session_id == SessionRow.id)
            .where(ItemRow.product_id == product_id, SessionRow.ends_at > self.deps.now())
        )
        return {item_id: price for item_id, price in rows}

    @staticmethod
    def _check_quota_fits_stock(quota: int, product: ProductRow) -> None:
        if quota > product.stock:
            raise FlashSaleError(
                ErrorCode.VALIDATION_ERROR, f"quota {quota} exceeds the product's stock of {product.stock}"
            )

    @staticmethod
    def _flush_unique(db: Session, message: str) -> None:
        try:
            db.flush()
        except IntegrityError as exc:
            raise FlashSaleError(ErrorCode.CONFLICT, message) from exc
