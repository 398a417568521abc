"""Billing periods: from an anchor day to the same day next month (SPEC §3).

A 31st anchor falls on the last day of shorter months and comes back to the 31st when the
month has one: every period boundary is computed from the anchor itself, never from the
previous boundary (chaining Jan 31 → Feb 28 → Mar 28 would drift).
"""

from __future__ import annotations

import calendar
from datetime import date


def add_months(anchor: date, months: int) -> date:
    """The anchor's day `months` later, clamped to the month's last day."""
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(anchor.day, last))


def period_bounds(anchor: date, k: int) -> tuple[date, date]:
    """The k-th period [start, end) of a subscription anchored on `anchor` (k ≥ 0)."""
    return add_months(anchor, k), add_months(anchor, k + 1)


def period_index(anchor: date, day: date) -> int:
    """k of the period that contains `day` (day ≥ anchor)."""
    if day < anchor:
        raise ValueError(f"{day} is before the anchor {anchor}")
    k = (day.year - anchor.year) * 12 + (day.month - anchor.month)
    # The estimate is exact or one too far (day before this month's anchor day).
    while add_months(anchor, k) > day:
        k -= 1
    while add_months(anchor, k + 1) <= day:
        k += 1
    return k


def period_containing(anchor: date, day: date) -> tuple[date, date]:
    return period_bounds(anchor, period_index(anchor, day))


def yearly_term_containing(anchor: date, day: date) -> tuple[date, date]:
    """The year-long term [start, end) of a yearly anchor that contains `day`."""
    k = period_index(anchor, day) // 12
    return add_months(anchor, 12 * k), add_months(anchor, 12 * (k + 1))
