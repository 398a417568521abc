"""Pricing: a period and its usage → invoice lines (pure; Decimal; cents half up per line).

SPEC §3: monthly base pro-rated by days (price × days ÷ period days, the change day belongs to
the new plan); yearly base once per term, never pro-rated; a credit for the unused days of a
yearly term left early; storage overage at $0.10/GB and bandwidth overage at $0.05/GB over the
amounts included by the plan on the period's last day; the total is the sum of rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
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
from hosting.billing.periods import add_months, period_containing, yearly_term_containing
from hosting.billing.schedule import MONTHLY, YEARLY, Credit, Period, Terms

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


@dataclass(frozen=True)
class CostImpact:
    """What a plan or cycle change on `as_of` costs in base price, for `plan` to show."""

    old_plan: str
    new_plan: str
    old_cycle: str
    new_cycle: str
    effective: date
    period_start: date
    period_end: date
    old_base: Decimal  # the running period's base without the change
    new_base: Decimal  # the same period's base with the change (incl. a yearly charge/credit)
    delta: Decimal
    note: str


def monthly_cost_impact(
    old: Terms, new: Terms, as_of: date, anchor: date, *, old_term_anchor: date | None = None
) -> CostImpact:
    """The base-price impact of changing from `old` to `new` on `as_of` (pure).

    Monthly → monthly: the running period [p0, p1) is pro-rated: old price × days before the
    change + new price × days from it, against the old plan's full price. Changes that involve
    a yearly cycle start a new term on `as_of`: the new side is the new plan's first charge
    (yearly price, or the monthly price of a full period), minus the credit for the unused days
    of the old yearly term; the old side is what the old plan would charge in its period that
    contains `as_of` (0 for a yearly plan outside its anniversary period).
    """
    p0, p1 = period_containing(anchor, as_of)
    days = (p1 - p0).days
    if old.cycle == MONTHLY and new.cycle == MONTHLY:
        old_base = cents(Decimal(old.price_monthly))
        before = (as_of - p0).days
        new_base = prorate(Decimal(old.price_monthly), before, days) + prorate(
            Decimal(new.price_monthly), days - before, days
        )
        note = f"pro-rated: {before} of {days} days on {old.plan}, {days - before} on {new.plan}"
    else:
        yearly_anchor = old_term_anchor or anchor
        is_anniversary_period = old.cycle == YEARLY and _starts_term(yearly_anchor, p0)
        if old.cycle == MONTHLY:
            old_base = cents(Decimal(old.price_monthly))
        else:
            old_base = cents(Decimal(old.price_yearly)) if is_anniversary_period else ZERO
        first = new.price_yearly if new.cycle == YEARLY else new.price_monthly
        new_base = cents(Decimal(first))
        note = f"new {new.cycle} term from {as_of}"
        if old.cycle == YEARLY and not new.same_plan(old) and as_of > yearly_anchor:
            t0, t1 = yearly_term_containing(yearly_anchor, date.fromordinal(as_of.toordinal() - 1))
            unused = (t1 - as_of).days
            if unused > 0:
                credit = credit_line(Credit(old, unused, (t1 - t0).days, t0, t1))
                new_base += credit.amount
                note += f", credit {credit.amount} for {unused} unused days"
        elif old.cycle == MONTHLY:
            before = (as_of - p0).days
            new_base += prorate(Decimal(old.price_monthly), before, days)
            note += f", {before} of {days} days on {old.plan} pro-rated"
    return CostImpact(
        old.plan,
        new.plan,
        old.cycle,
        new.cycle,
        as_of,
        p0,
        p1,
        old_base,
        new_base,
        new_base - old_base,
        note,
    )


def _starts_term(anchor: date, day: date) -> bool:
    k = (day.year - anchor.year) * 12 + day.month - anchor.month
    return k >= 0 and k % 12 == 0 and add_months(anchor, k) == day
