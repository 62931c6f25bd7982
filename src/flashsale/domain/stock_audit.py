"""Oversell and undersell of one item at the end of a sale, from the ledger's counters and the stored
orders (definitions: `flashsale.demo.report.DEFINITIONS`). Used by the demo and by rehearsals."""

from __future__ import annotations


def oversold(*, quota: int, sold: int, held: int, db_sold: int, db_held: int, over_limit: int) -> int:
    """Units past the quota in the ledger or the database (the larger), plus units past per-user limits."""
    return max(0, max(sold + held, db_sold + db_held) - quota) + over_limit


def undersold(*, quota: int, available: int, held: int, sold: int, unserved: int) -> int:
    """Units the ledger lost, plus units left available while that many shoppers were turned away."""
    lost = quota - available - held - sold
    return max(0, lost) + min(max(0, available), unserved)
