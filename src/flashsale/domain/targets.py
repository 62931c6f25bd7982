"""KPI targets an operator sets for a campaign, and how the campaign did against them.

A target is an integer in its KPI's unit: cents for money, a count for counts, and basis points
(1/10,000) for shares, so it is stored and compared exactly. Most KPIs are better higher (met
when reached); the expired and cancelled shares and the refunds are better lower (met when not
exceeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from flashsale.domain.review import Kpis

BASIS_POINTS = 10_000


class Unit(StrEnum):
    CENTS = "cents"
    COUNT = "count"
    SHARE = "share"  # targets in basis points


# kpi -> (unit, better higher?)
TARGETABLE: dict[str, tuple[Unit, bool]] = {
    "gmv_cents": (Unit.CENTS, True),
    "orders_paid": (Unit.COUNT, True),
    "units_sold": (Unit.COUNT, True),
    "aov_cents": (Unit.CENTS, True),
    "participants": (Unit.COUNT, True),
    "buyers": (Unit.COUNT, True),
    "orders_placed": (Unit.COUNT, True),
    "conversion": (Unit.SHARE, True),
    "expired_share": (Unit.SHARE, False),
    "cancelled_share": (Unit.SHARE, False),
    "refunded_cents": (Unit.CENTS, False),
}


@dataclass(frozen=True, slots=True)
class Target:
    """The operator's target for one KPI, in the KPI's unit (shares in basis points)."""

    kpi: str
    value: int

    def __post_init__(self) -> None:
        if self.kpi not in TARGETABLE:
            raise ValueError(f"no KPI {self.kpi!r}: one of {', '.join(TARGETABLE)}")
        if self.value < 0:
            raise ValueError("a target cannot be negative")
        if self.unit is Unit.SHARE and self.value > BASIS_POINTS:
            raise ValueError(f"a share's target is at most {BASIS_POINTS} basis points (100 %)")

    @property
    def unit(self) -> Unit:
        return TARGETABLE[self.kpi][0]

    @property
    def higher_is_better(self) -> bool:
        return TARGETABLE[self.kpi][1]


@dataclass(frozen=True, slots=True)
class TargetResult:
    """A target beside what the campaign achieved (in the same unit), whether it was met, and the
    achieved share of the target (None for a target of 0)."""

    target: Target
    achieved: int
    met: bool
    attainment: float | None


def judge_targets(kpis: Kpis, targets: Sequence[Target]) -> list[TargetResult]:
    """Compare the campaign's KPIs with each target, in the order of TARGETABLE."""
    results = []
    for target in sorted(targets, key=lambda t: list(TARGETABLE).index(t.kpi)):
        actual = getattr(kpis, target.kpi)
        achieved = round(actual * BASIS_POINTS) if target.unit is Unit.SHARE else int(actual)
        met = achieved >= target.value if target.higher_is_better else achieved <= target.value
        attainment = round(achieved / target.value, 4) if target.value else None
        results.append(TargetResult(target, achieved, met, attainment))
    return results
