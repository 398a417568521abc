"""`audit --since` reads DATE|DURATION by hosting.dates' rules, as `logs --since` does, and
turns it into a UTC time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hosting.dates import since_time
from hosting.errors import UsageError

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", datetime(2026, 11, 29, 11, 50, tzinfo=UTC)),
        ("1h30m", datetime(2026, 11, 29, 10, 30, tzinfo=UTC)),
        ("1.5s", datetime(2026, 11, 29, 11, 59, 58, 500000, tzinfo=UTC)),
        ("2026-11-05", datetime(2026, 11, 5, tzinfo=UTC)),
        ("2026-11-05T10:00:00Z", datetime(2026, 11, 5, 10, tzinfo=UTC)),
        ("2026-11-05T10:00:00+02:00", datetime(2026, 11, 5, 8, tzinfo=UTC)),
        ("2026-11-05T10:00:00", datetime(2026, 11, 5, 10, tzinfo=UTC)),
        ("1764417600", datetime(2025, 11, 29, 12, tzinfo=UTC)),
    ],
)
def test_since_values_as_utc_times(text: str, expected: datetime) -> None:
    assert since_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10 m", "2026-13-01", ""])
def test_anything_else_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration or a time"):
        since_time(text, NOW)
