"""Pricing: a period and its usage → invoice lines (pure; Decimal; cents half up per line).

SPEC §3: monthly base pro-rated by days (price × days ÷ period days, the change day belongs to
the new plan); yearly base once per term, never pro-rated; a credit for the unused days of a
yearly term left early; storage overage at $0.10/GB and bandwidth overage at $0.05/GB over the
amounts included by the plan on the period's last day; the total is the sum of rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hosting.billing.money import (
    BANDWIDTH_PER_GB,
    STORAGE_PER_GB,
    ZERO,
    cents,
    div,
    mul,
    quantity,
)
from hosting.billing.periods import add_months
from hosting.billing.schedule import Credit, Period

KINDS = ("base", "credit", "storage", "bandwidth")


@dataclass(frozen=True)
class Line:
    kind: str  # base | credit | storage | bandwidth
    description: str
    quantity: Decimal  # days ÷ period days, GB of overage, or −unused ÷ term days
    unit_price: Decimal
    amount: Decimal  # rounded to cents, half up
    plan: str | None = None


@dataclass(frozen=True)
class Usage:
    """A tenant's usage in a period: average storage and outbound bandwidth, in GB (exact)."""

    storage_gb: Decimal
    bandwidth_gb: Decimal


def prorate(price: Decimal, days: int, period_days: int) -> Decimal:
    """price × days ÷ period_days, rounded to cents half up."""
    if period_days <= 0 or not 0 <= days <= period_days:
        raise ValueError(f"cannot pro-rate {days} days of a {period_days}-day period")
    return cents(div(mul(price, days), period_days))


def overage_gb(used_gb: Decimal, included_gb: int | Decimal) -> Decimal:
    return max(ZERO, used_gb - Decimal(included_gb))


def overage_line(kind: str, used_gb: Decimal, included_gb: int, unit: Decimal) -> Line:
    over = overage_gb(used_gb, included_gb)
    label = "Storage" if kind == "storage" else "Bandwidth"
    what = "average" if kind == "storage" else "used"
    desc = f"{label}: {_gb(used_gb)} GB {what}, {included_gb} GB included, {_gb(over)} GB over"
    return Line(kind, desc, quantity(over), unit, cents(mul(over, unit)))


def _gb(value: Decimal) -> str:
    return f"{cents(value)}"


def base_lines(period: Period) -> list[Line]:
    """One base line per plan (grouped by plan and price) plus the yearly charge, if any."""
    lines: list[Line] = []
    grouped: dict[tuple[str, Decimal], int] = {}
    for terms, days in period.monthly_portions:
        key = (terms.plan, Decimal(terms.price_monthly))
        grouped[key] = grouped.get(key, 0) + days
    for (plan, price), days in grouped.items():
        if days == period.days:
            desc = f"{plan.capitalize()} plan (monthly)"
        else:
            desc = f"{plan.capitalize()} plan (monthly), {days} of {period.days} days"
        lines.append(
            Line(
                "base",
                desc,
                quantity(div(days, period.days)),
                price,
                prorate(price, days, period.days),
                plan,
            )
        )
    if period.yearly_charge is not None:
        terms = period.yearly_charge
        price = Decimal(terms.price_yearly)
        term_end = add_months(period.start, 12)
        desc = f"{terms.plan.capitalize()} plan (yearly), {period.start} to {term_end}"
        lines.append(Line("base", desc, Decimal(1), price, cents(price), terms.plan))
    for credit in period.credits:
        lines.append(credit_line(credit))
    return lines


def credit_line(credit: Credit) -> Line:
    """old yearly price × unused days ÷ days of that year-long term, as a negative line."""
    price = Decimal(credit.terms.price_yearly)
    amount = -cents(div(mul(price, credit.unused_days), credit.term_days))
    desc = (
        f"Credit: {credit.unused_days} unused of {credit.term_days} days of "
        f"{credit.terms.plan.capitalize()} (yearly, {credit.term_start} to {credit.term_end})"
    )
    qty = quantity(-div(credit.unused_days, credit.term_days))
    return Line("credit", desc, qty, price, amount, credit.terms.plan)


def price_period(period: Period, usage: Usage) -> list[Line]:
    """Every line of the period's invoice, in a stable order: base, credit, storage, bandwidth."""
    inc = period.included
    return [
        *base_lines(period),
        overage_line("storage", usage.storage_gb, inc.storage_gb, STORAGE_PER_GB),
        overage_line("bandwidth", usage.bandwidth_gb, inc.bandwidth_gb, BANDWIDTH_PER_GB),
    ]


def total(lines: list[Line]) -> Decimal:
    """The sum of the rounded lines (never a rounding of the unrounded sum)."""
    return sum((line.amount for line in lines), ZERO)


def cost_of(lines: list[Line], *kinds: str) -> Decimal:
    return sum((line.amount for line in lines if line.kind in kinds), ZERO)
