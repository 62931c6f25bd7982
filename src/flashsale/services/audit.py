"""The payments audit: per order and in total, charges − refunds − rebates must equal what the order says.

A paid order must keep its total less the rebate it won as a free order (`free_order_wins`), so a
rebate with no win, or a win whose rebate is missing or still unsent, is a discrepancy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.orders import OrderStatus
from flashsale.domain.payments import OrderMoney
from flashsale.store.tables import FreeOrderWinRow, OrderRow, PaymentRow


@dataclass(frozen=True, slots=True)
class AuditReport:
    orders_checked: int
    charged_cents: int
    refunded_cents: int
    expected_cents: int
    discrepancies: list[OrderMoney] = field(default_factory=list)
    rebated_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.charged_cents - self.refunded_cents - self.rebated_cents

    @property
    def clean(self) -> bool:
        """True when every order, and so the total, nets to what its status says."""
        return not self.discrepancies and self.net_cents == self.expected_cents


def _sum_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, PaymentRow.amount_cents), else_=0)), 0)


def audit_payments(sessions: sessionmaker[Session]) -> AuditReport:
    """Sum the journal per order (one grouped query) and judge each order by its status.

    Orders without any journal row count only if they claim money (PAID): an unpaid order with
    no payments nets to zero as it should, so it is not read at all.
    """
    done_charge = (PaymentRow.kind == "charge") & (PaymentRow.status == "done")
    done_refund = (PaymentRow.kind == "refund") & (PaymentRow.status == "done")
    pending_refund = (PaymentRow.kind == "refund") & (PaymentRow.status != "done")
    done_rebate = (PaymentRow.kind == "rebate") & (PaymentRow.status == "done")
    pending_rebate = (PaymentRow.kind == "rebate") & (PaymentRow.status != "done")
    won = (
        select(func.coalesce(func.sum(FreeOrderWinRow.rebate_cents), 0))
        .where(FreeOrderWinRow.order_id == OrderRow.id)
        .scalar_subquery()
    )
    query = (
        select(
            OrderRow.id,
            OrderRow.status,
            OrderRow.total_cents,
            _sum_where(done_charge),
            _sum_where(done_refund),
            _sum_where(pending_refund),
            _sum_where(done_rebate),
            _sum_where(pending_rebate),
            won,
        )
        .outerjoin(PaymentRow, PaymentRow.order_id == OrderRow.id)
        .where((PaymentRow.id.is_not(None)) | (OrderRow.status == OrderStatus.PAID.value))
        .group_by(OrderRow.id, OrderRow.status, OrderRow.total_cents)
        .order_by(OrderRow.id)
    )
    checked = charged = refunded = rebated = expected = 0
    problems: list[OrderMoney] = []
    with sessions() as db:
        for order_id, status, total, charge, refund, pending, rebate, pending_rebate, won_cents in db.execute(
            query
        ):
            money = OrderMoney(
                order_id, OrderStatus(status), int(total), int(charge), int(refund), int(pending),
                int(rebate), int(pending_rebate), int(won_cents),
            )  # fmt: skip
            checked += 1
            charged += money.charged_cents
            refunded += money.refunded_cents
            rebated += money.rebated_cents
            expected += money.expected_cents
            if money.problem() is not None:
                problems.append(money)
    return AuditReport(checked, charged, refunded, expected, problems, rebated)
