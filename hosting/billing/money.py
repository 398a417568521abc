"""Money arithmetic: Decimal only, rounded to cents once per line, half up.

Python's default context rounds half to even (2.675 → 2.67 at cents would be 2.68 half up),
so every rounding here names ROUND_HALF_UP explicitly instead of trusting the context.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
GB = 2**30  # SPEC §3: GB = 2^30 bytes
STORAGE_PER_GB = Decimal("0.10")
BANDWIDTH_PER_GB = Decimal("0.05")
CURRENCY = "USD"
QUANTITY = Decimal("0.000000000001")  # 12 places: how quantities are stored and shown

# Quotients such as byte-seconds ÷ (seconds × 2^30) do not terminate; 60 significant digits
# keep them exact far beyond the cent, so the one rounding that matters is the line's own.
EXACT = Context(prec=60, rounding=ROUND_HALF_UP)


def cents(value: Decimal) -> Decimal:
    """Round to cents, half up (never the context's half-even)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def div(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    return EXACT.divide(Decimal(numerator), Decimal(denominator))


def mul(a: Decimal | int, b: Decimal | int) -> Decimal:
    return EXACT.multiply(Decimal(a), Decimal(b))


def quantity(value: Decimal) -> Decimal:
    """A quantity as stored: 12 decimal places, half up."""
    return value.quantize(QUANTITY, rounding=ROUND_HALF_UP, context=EXACT)


def bytes_to_gb(value: Decimal | int) -> Decimal:
    return div(value, GB)
