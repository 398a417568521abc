"""A usage window's length to the microsecond (pure): the current period's window ends at a
cut-off time of day, not at midnight, so its seconds and microseconds count too."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hosting.billing.usage import RawUsage, Window

GIB = 1073741824  # 2^30


def test_the_storage_average_divides_by_the_span_to_the_microsecond() -> None:
    start = datetime(2025, 3, 1)
    # 1 day, 1 second and half a second: 86_401.5 s = 86_401_500_000 µs.
    span = datetime(2025, 3, 2, 0, 0, 1, 500_000)
    window = Window("acme", start, span, span)
    # 5 GiB held over the whole span averages exactly 5 GB; 3 GiB out is 3 GB.
    raw = RawUsage(bandwidth_bytes=3 * GIB, storage_byte_us=5 * GIB * 86_401_500_000)
    use = raw.usage(window)
    assert (use.storage_gb, use.bandwidth_gb) == (Decimal(5), Decimal(3))
    # Held for the first 43_200.75 s (half the span): 2.5 GB.
    half = RawUsage(bandwidth_bytes=0, storage_byte_us=5 * GIB * 43_200_750_000)
    assert half.usage(window).storage_gb == Decimal("2.5")
