"""Dates as users give them, read in one place with one set of rules for every command.

A DATE is `YYYY-MM-DD` exactly (no `2026-11-5`, no time of day) and a UTC day. An as-of
date may not be after today: usage, plan changes and invoices after today are not known yet.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

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


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
_UNIX_TIME = re.compile(r"\d+(?:\.\d+)?")


def parse_since(text: str) -> str:
    """A `--since` value as Docker takes it, checked before Docker sees it: a duration (10m,
    2h, 1h30m), a day (2026-11-05), an ISO 8601 time (2026-11-05T10:00:00Z) or Unix seconds.
    Returned unchanged; anything else is a UsageError naming the text."""
    if _DURATION.fullmatch(text) or _UNIX_TIME.fullmatch(text):
        return text
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(
            f"`{text}` is not a duration or a time",
            "e.g. 10m, 2h, 1h30m, 2026-11-05 or 2026-11-05T10:00:00Z",
        ) from None
    return text


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def since_time(text: str, now: datetime | None = None) -> datetime:
    """A `--since` value, read by parse_since's rules, as a UTC time: a duration counts back
    from `now`, a day is its midnight UTC, a time without an offset is UTC."""
    parse_since(text)
    now = now or datetime.now(UTC)
    if _DURATION.fullmatch(text):
        parts = _DURATION_PART.findall(text)
        return now - timedelta(seconds=sum(float(n) * _SECONDS[unit] for n, unit in parts))
    if _UNIX_TIME.fullmatch(text):
        return datetime.fromtimestamp(float(text), UTC)
    when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
