"""Dates as users give them, read in one place with one set of rules for every command.

A DATE is `YYYY-MM-DD` exactly (no `2026-11-5`, no time of day) and a UTC day. An as-of
date may not be after today: usage, plan changes and invoices after today are not known yet.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from hosting.errors import UsageError

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def today() -> date:
    """Today, as a UTC day (the store's days are UTC days)."""
    return datetime.now(UTC).date()


def parse_day(text: str) -> date:
    """`YYYY-MM-DD` as a date, or a UsageError naming the text."""
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"`{text}` is not a date", "use YYYY-MM-DD, e.g. 2026-11-30") from None


def as_of_day(day: date | None) -> date:
    """The as-of day: today when not given; a day after today is refused."""
    now = today()
    if day is None:
        return now
    if day > now:
        raise UsageError(
            f"as-of date {day} is in the future (today is {now} UTC)",
            "give a date up to today; usage and plan changes after today are not known yet",
        )
    return day


def parse_as_of(text: str | None) -> date:
    """An `--as-of DATE` option's text (None: today), by the rules above."""
    return as_of_day(None if text is None else parse_day(text))
