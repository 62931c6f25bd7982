"""Rows <-> domain objects, and the queries the services need."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import (
    CursorResult,
    Executable,
    Row,
    Table,
    TextClause,
    bindparam,
    case,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert, Update

from flashsale.domain.campaign import Campaign, FlashSession, Phase, PhaseKind
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold
from flashsale.domain.orders import HOLD_OF_STATUS, STATUS_OF_HOLD, Order, OrderStatus
from flashsale.domain.payments import Payment
from flashsale.domain.sale import FlashItem, ItemTerms
from flashsale.ledger.contract import BookId
from flashsale.store.bulk import insert_rows
from flashsale.store.tables import (
    Base,
    CampaignRow,
    CheckoutLineRow,
    EventRow,
    ItemRow,
    LedgerMarkRow,
    OrderRow,
    PaymentRow,
    PhaseRow,
    ProductRow,
    SessionRow,
)

T = TypeVar("T")


def to_epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def campaign_of(row: CampaignRow, phases: Iterable[PhaseRow]) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        theme=row.theme,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        phases=tuple(Phase(PhaseKind(p.kind), p.starts_at, p.ends_at) for p in phases),
        payment_window_s=row.payment_window_s,
        rehearsal=row.rehearsal,
    )


def session_of(row: SessionRow) -> FlashSession:
    return FlashSession(row.id, row.campaign_id, row.name, row.starts_at, row.ends_at)


def product_of(row: ProductRow) -> Product:
    return Product(row.id, row.sku, row.name, row.list_price_cents, row.stock, row.category)


def item_of(row: ItemRow) -> FlashItem:
    return FlashItem(
        id=row.id,
        session_id=row.session_id,
        product_id=row.product_id,
        flash_price_cents=row.flash_price_cents,
        quota=row.quota,
        per_user_limit=row.per_user_limit,
        coupons_allowed=row.coupons_allowed,
        regular=row.regular,
        member_prices=tuple(sorted((row.member_prices or {}).items())),
    )


def order_of(row: OrderRow | Row[Any]) -> Order:
    """The order of a stored row (an ORM row or a Core row of the orders table)."""
    return Order(
        id=row.id,
        user_id=row.user_id,
        item_id=row.item_id,
        qty=row.qty,
        unit_price_cents=row.unit_price_cents,
        total_cents=row.total_cents,
        status=OrderStatus(row.status),
        request_id=row.request_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        paid_at=row.paid_at,
        closed_at=row.closed_at,
        payment_ref=row.payment_ref,
    )


def payment_of(row: PaymentRow) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        provider=row.provider,
        provider_ref=row.provider_ref,
        amount_cents=row.amount_cents,
        kind=row.kind,
        status=row.status,
        refund_ref=row.refund_ref,
        created_at=row.created_at,
    )


def hold_of(row: OrderRow | Order) -> Hold:
    """The ledger hold an order stands for, from its stored row or the order itself."""
    return Hold(
        hold_id=row.id,
        item_id=row.item_id,
        user_id=row.user_id,
        qty=row.qty,
        request_id=row.request_id,
        created_at=to_epoch(row.created_at),
        expires_at=to_epoch(row.expires_at),
        state=HOLD_OF_STATUS[OrderStatus(row.status)],
    )


def terms_of(item: ItemRow, session: SessionRow, campaign: CampaignRow) -> ItemTerms:
    return ItemTerms(
        item_id=item.id,
        quota=item.quota,
        per_user_limit=item.per_user_limit,
        opens_at=to_epoch(session.starts_at),
        closes_at=to_epoch(session.ends_at),
        hold_ttl_s=float(campaign.payment_window_s),
    )


def get_row(db: Session, model: type[T], ident: int, what: str) -> T:
    """The row of `model` with this primary key; NOT_FOUND naming `what` if there is none."""
    row = db.get(model, ident)
    if row is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, f"no {what} {ident}")
    return row


def campaign_with_phases(db: Session, row: CampaignRow) -> Campaign:
    """The campaign of a row, with its phases in time order."""
    phases = db.scalars(select(PhaseRow).where(PhaseRow.campaign_id == row.id).order_by(PhaseRow.starts_at))
    return campaign_of(row, phases)


def load_campaign(db: Session, campaign_id: int) -> Campaign:
    """The campaign with this id and its phases; NOT_FOUND if there is none."""
    return campaign_with_phases(db, get_row(db, CampaignRow, campaign_id, "campaign"))


def in_rehearsal(db: Session, item_id: int) -> bool:
    """Whether the item belongs to a load rehearsal's copy (a campaign hidden from the shop)."""
    query = (
        select(CampaignRow.rehearsal)
        .join(SessionRow, SessionRow.campaign_id == CampaignRow.id)
        .join(ItemRow, ItemRow.session_id == SessionRow.id)
        .where(ItemRow.id == item_id)
    )
    return bool(db.scalar(query))


def all_item_terms(db: Session, session_id: int | None = None) -> list[ItemTerms]:
    """Return the ledger terms of every item (or of one session's items)."""
    query = (
        select(ItemRow, SessionRow, CampaignRow)
        .join(SessionRow, ItemRow.session_id == SessionRow.id)
        .join(CampaignRow, SessionRow.campaign_id == CampaignRow.id)
        .order_by(ItemRow.id)
    )
    if session_id is not None:
        query = query.where(SessionRow.id == session_id)
    return [terms_of(i, s, c) for i, s, c in db.execute(query).all()]


def all_holds(db: Session) -> list[Hold]:
    """Return every order as the ledger hold it stands for (the ledger's rebuild source)."""
    return [hold_of(row) for row in db.scalars(select(OrderRow).order_by(OrderRow.created_at))]


def order_of_hold(hold: Hold, *, unit_price_cents: int, total_cents: int) -> Order:
    """Return the order a hold stands for, priced."""
    return Order(
        id=hold.hold_id,
        user_id=hold.user_id,
        item_id=hold.item_id,
        qty=hold.qty,
        unit_price_cents=unit_price_cents,
        total_cents=total_cents,
        status=STATUS_OF_HOLD[hold.state],
        request_id=hold.request_id,
        created_at=from_epoch(hold.created_at),
        expires_at=from_epoch(hold.expires_at),
    )


def bring_deadline_forward(db: Session, order_id: str, expires_at: datetime) -> None:
    """Move an unpaid order's deadline to `expires_at` if that is sooner (its hold's was shortened)."""
    db.execute(
        update(OrderRow)
        .where(
            OrderRow.id == order_id,
            OrderRow.status == OrderStatus.UNPAID.value,
            OrderRow.expires_at > expires_at,
        )
        .values(expires_at=expires_at)
    )


def insert_orders(db: Session, orders: Iterable[Order]) -> set[str]:
    """Insert orders, skipping any whose id or (user, request id) is stored already; return the new ids.

    Idempotent by construction, so a redelivered purchase or a replay racing the writer is harmless.
    """
    rows = [  # in the order of _ORDER_COLUMNS
        (
            o.id,
            o.user_id,
            o.item_id,
            o.qty,
            o.unit_price_cents,
            o.total_cents,
            o.status.value,
            o.request_id,
            o.created_at,
            o.expires_at,
        )
        for o in orders
    ]
    if not rows:
        return set()
    if db.get_bind().dialect.name == "postgresql":
        return _insert_orders_unnest(db, rows)
    table = cast(Table, OrderRow.__table__)
    return set(insert_rows(db, table, _ORDER_COLUMNS, rows, ignore_duplicates=True, returning="id"))


def _unnest_insert(table: Table, columns: Sequence[str], *, skip_clashes: bool = True) -> TextClause:
    """INSERT … SELECT FROM unnest(one array per column); with `skip_clashes`, ON CONFLICT DO NOTHING
    RETURNING the key (the rows inserted)."""
    dialect = postgresql.dialect()
    arrays = ", ".join(f"CAST(:{c} AS {table.c[c].type.compile(dialect=dialect)}[])" for c in columns)
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
    if skip_clashes:
        statement += f" ON CONFLICT DO NOTHING RETURNING {', '.join(k.name for k in table.primary_key)}"
    return text(statement)


def _arrays(
    db: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> dict[str, list[Any]]:
    """The rows (values in the order of `columns`) as one list per column, each value as the
    column's type binds it."""
    dialect = db.get_bind().dialect
    arrays: dict[str, list[Any]] = {}
    for i, name in enumerate(columns):
        bind = table.c[name].type.bind_processor(dialect)  # e.g. UTCDateTime's check and conversion
        column = [row[i] for row in rows]
        arrays[name] = [bind(v) for v in column] if bind is not None else column
    return arrays


_ORDER_COLUMNS = (
    "id",
    "user_id",
    "item_id",
    "qty",
    "unit_price_cents",
    "total_cents",
    "status",
    "request_id",
    "created_at",
    "expires_at",
)
# PostgreSQL gets the orders as one array per column: the statement's text is the same whatever the
# batch, so psycopg parses it once. A VALUES list as long as the batch (SQLAlchemy's insertmanyvalues
# for an executemany with RETURNING) was parsed anew for every batch: 40 % of an order writer's CPU.
_INSERT_ORDERS_PG = _unnest_insert(cast(Table, OrderRow.__table__), _ORDER_COLUMNS)


def _insert_orders_unnest(db: Session, rows: list[tuple[Any, ...]]) -> set[str]:
    table = cast(Table, OrderRow.__table__)
    return set(db.connection().execute(_INSERT_ORDERS_PG, _arrays(db, table, _ORDER_COLUMNS, rows)).scalars())


_EVENT_COLUMNS = ("order_id", "kind", "payload", "created_at")
_INSERT_EVENTS_PG = _unnest_insert(cast(Table, EventRow.__table__), _EVENT_COLUMNS, skip_clashes=False)


def insert_events(db: Session, rows: list[tuple[Any, ...]]) -> None:
    """Write outbox rows (values in the order of `_EVENT_COLUMNS`) in one statement: on PostgreSQL
    one of arrays, as the orders are (an executemany sent and bound every row apart, a third of the
    order writer's CPU per order); on SQLite a multi-row insert at the driver (store/bulk.py)."""
    if not rows:
        return
    table = cast(Table, EventRow.__table__)
    if db.get_bind().dialect.name == "postgresql":
        arrays = _arrays(db, table, _EVENT_COLUMNS, rows)
        arrays["payload"] = [json.dumps(p) for p in arrays["payload"]]  # psycopg binds no JSON in arrays
        db.connection().execute(_INSERT_EVENTS_PG, arrays)
    else:
        insert_rows(db, table, _EVENT_COLUMNS, rows)


def save_transition(db: Session, before: Order, after: Order) -> bool:
    """Store the move of an order from `before` to `after` if the stored order is still `before`'s status.

    The one way an order's state is written after it is placed: a compare-and-set, so of two
    racing moves from one status exactly one changes the row (the other gets False and must not
    record its event). It writes the status and whichever of paid_at, closed_at and payment_ref
    the move changed.
    """
    assert before.id == after.id
    changed = tuple(f for f in _MOVED_FIELDS if getattr(after, f) != getattr(before, f))
    params: dict[str, Any] = {f"new_{f}": getattr(after, f) for f in changed}
    params.update(order_id=before.id, before=before.status.value, after=after.status.value)
    return changed_rows(db, _transition_statement(changed), params) > 0


_MOVED_FIELDS = ("paid_at", "closed_at", "payment_ref")


@cache
def _transition_statement(fields: tuple[str, ...]) -> Update:
    """The compare-and-set UPDATE of a move that writes `fields` besides the status, built once per
    shape: building and keying a statement per call cost more than running it."""
    return (
        update(OrderRow)
        .where(OrderRow.id == bindparam("order_id"), OrderRow.status == bindparam("before"))
        .values(status=bindparam("after"), **{f: bindparam(f"new_{f}") for f in fields})
    )


def finish_payment(db: Session, payment_id: int, *, status: str, refund_ref: str | None) -> None:
    """Write how a journalled money movement ended (a refund: the provider's reference for it)."""
    db.connection().execute(
        update(PaymentRow).where(PaymentRow.id == payment_id).values(status=status, refund_ref=refund_ref)
    )


def changed_rows(db: Session, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
    """Run an UPDATE or DELETE (with `params` for its bound parameters) and return how many rows it
    changed (a guard that matched none: 0).

    On the session's connection, as plain Core: the ORM's version would also look for the rows in
    the session's identity map, which costs more than the statement. A row read through the
    session before is therefore stale afterwards: read it again with `populate_existing`.
    """
    result = db.connection().execute(statement, params)
    return cast(CursorResult[Any], result).rowcount  # a DML result is a cursor's


def insert_ignoring_duplicates(db: Session, model: type[Base]) -> Insert:
    """Build an INSERT that skips rows clashing with a unique key (PostgreSQL and SQLite alike)."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()


def ledger_marks(db: Session) -> dict[BookId, int]:
    """Return every ledger book's high-water mark: (item, bucket) -> the highest sequence whose grant
    is stored (see `flashsale.ledger.contract`)."""
    rows = db.execute(select(LedgerMarkRow.item_id, LedgerMarkRow.bucket, LedgerMarkRow.seq))
    return {(item_id, bucket): seq for item_id, bucket, seq in rows}


def ledger_mark_orders(db: Session) -> dict[BookId, tuple[int, str]]:
    """Return every book's mark with the order granted at it: (item, bucket) -> (sequence, order id)."""
    rows = db.execute(
        select(LedgerMarkRow.item_id, LedgerMarkRow.bucket, LedgerMarkRow.seq, LedgerMarkRow.order_id)
    )
    return {(item_id, bucket): (seq, order_id) for item_id, bucket, seq, order_id in rows}


def raise_ledger_marks(db: Session, marks: Mapping[BookId, tuple[int, str]]) -> None:
    """Raise the books' marks to `marks` ((item, bucket) -> (sequence, order id)) where higher; never
    lower one.

    Writers race, so the comparison is in the statement. Rows are written in book order, so
    writers racing on the same books lock them in one order.
    """
    if not marks:
        return
    db.connection().execute(
        _raise_marks_statement(db.get_bind().dialect.name),
        [
            {"item_id": item_id, "bucket": bucket, "seq": seq, "order_id": order_id}
            for (item_id, bucket), (seq, order_id) in sorted(marks.items())
        ],
    )


@cache
def _raise_marks_statement(dialect_name: str) -> Insert:
    """The upsert of `raise_ledger_marks`, built once per dialect and run as plain Core: built per call
    and sent through the ORM's bulk insert, it cost the order writer a third of its CPU per order."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(LedgerMarkRow)
    new = statement.excluded
    higher = new.seq > LedgerMarkRow.seq
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[LedgerMarkRow.item_id, LedgerMarkRow.bucket],
        set_={
            "seq": case((higher, new.seq), else_=LedgerMarkRow.seq),
            "order_id": case((higher, new.order_id), else_=LedgerMarkRow.order_id),
        },
    )
    return upsert


def checkout_line_price(db: Session, user_id: str, request_id: str) -> tuple[int, int] | None:
    """The (unit, total) price a cart checkout gave the line held under `request_id`, or None."""
    found = db.execute(
        select(CheckoutLineRow.unit_price_cents, CheckoutLineRow.total_cents).where(
            CheckoutLineRow.user_id == user_id, CheckoutLineRow.request_id == request_id
        )
    ).first()
    return None if found is None else (found[0], found[1])
