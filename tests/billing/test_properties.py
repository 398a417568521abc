"""Property tests of the pure billing core (hypothesis)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hosting.billing import pricing, schedule
from hosting.billing.money import cents
from hosting.billing.periods import add_months, period_containing, yearly_term_containing
from hosting.billing.pricing import (
    Usage,
    credit_line,
    overage_line,
    price_period,
    prorate,
    total,
)
from hosting.billing.schedule import Credit, HistoryRow, Terms

prices = st.integers(min_value=0, max_value=10_000_00).map(lambda c: Decimal(c) / 100)
days_in_period = st.integers(min_value=28, max_value=31)
gb = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n) / 1000)
anchors = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def half_up_reference(value: Fraction) -> Decimal:
    """Cents half up by integer arithmetic, independent of the decimal module's contexts."""
    hundredths = value * 100
    sign = -1 if hundredths < 0 else 1
    n = abs(hundredths)
    whole = int(n)
    if n - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(sign * whole) / 100


@given(prices, days_in_period)
def test_prorating_a_whole_period_gives_the_full_price(price: Decimal, days: int) -> None:
    assert prorate(price, days, days) == price


@given(prices, days_in_period, st.data())
def test_splitting_a_period_never_costs_more_than_a_cent_above_the_whole(
    price: Decimal, days: int, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=days))
    parts = prorate(price, cut, days) + prorate(price, days - cut, days)
    assert parts - price <= Decimal("0.01")
    assert price - parts <= Decimal("0.01")


@given(prices, days_in_period, st.data())
def test_prorate_rounds_half_up_exactly(price: Decimal, days: int, data: st.DataObject) -> None:
    used = data.draw(st.integers(min_value=0, max_value=days))
    expected = half_up_reference(Fraction(price) * used / days)
    assert prorate(price, used, days) == expected


# Random draws almost never land on a half cent, so ties are given as examples too: at each,
# half up and half even differ (0.005 → 0.01 not 0.00, 0.025 → 0.03 not 0.02).
@given(gb, st.integers(min_value=0, max_value=5000), st.sampled_from(["storage", "bandwidth"]))
@example(Decimal("0.1"), 0, "bandwidth")  # 0.1 GB × $0.05 = $0.005
@example(Decimal("10.5"), 10, "bandwidth")  # $0.025
@example(Decimal("0.05"), 0, "storage")  # 0.05 GB × $0.10 = $0.005
@example(Decimal("100.25"), 100, "storage")  # $0.025
def test_overage_is_never_negative_and_rounds_half_up(
    used: Decimal, included: int, kind: str
) -> None:
    unit = Decimal("0.10") if kind == "storage" else Decimal("0.05")
    line = overage_line(kind, used, included, unit)
    assert line.amount >= 0 and line.quantity >= 0
    expected = half_up_reference(max(Fraction(0), Fraction(used) - included) * Fraction(unit))
    assert line.amount == expected


# Properties that draw only ties: a half-cent amount must round up (away from zero), which is
# where half up and half even part.
odd_cents = st.integers(min_value=0, max_value=5_000_00).map(lambda c: 2 * c + 1)


@given(odd_cents, st.sampled_from([28, 30]))
def test_half_a_period_of_an_odd_cent_price_rounds_the_tie_up(price_cents: int, days: int) -> None:
    price = Decimal(price_cents) / 100
    assert prorate(price, days // 2, days) == Decimal((price_cents + 1) // 2) / 100


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=5000))
def test_an_overage_on_a_half_cent_rounds_the_tie_up(k: int, included: int) -> None:
    # (2k+1)/10 GB × $0.05 and (2k+1)/20 GB × $0.10 are both (2k+1) half cents
    bandwidth = overage_line("bandwidth", included + Decimal(2 * k + 1) / 10, included,
                             Decimal("0.05"))  # fmt: skip
    storage = overage_line("storage", included + Decimal(2 * k + 1) / 20, included,
                           Decimal("0.10"))  # fmt: skip
    assert bandwidth.amount == storage.amount == Decimal(k + 1) / 100


@given(odd_cents, st.sampled_from([(183, 366), (182, 364)]))
def test_a_credit_of_half_a_term_rounds_the_tie_away_from_zero(
    price_cents: int, days: tuple[int, int]
) -> None:
    unused, term = days
    terms = Terms("pro", "yearly", Decimal(0), Decimal(price_cents) / 100, 0, 0)
    line = credit_line(Credit(terms, unused, term, date(2026, 1, 1), date(2027, 1, 1)))
    assert line.amount == -Decimal((price_cents + 1) // 2) / 100


def _terms(plan: str, cycle: str, monthly: Decimal, storage: int, bandwidth: int) -> Terms:
    return Terms(plan, cycle, monthly, monthly * 10, storage, bandwidth)


terms_st = st.builds(
    _terms,
    st.sampled_from(["free", "starter", "pro", "team"]),
    st.sampled_from(["monthly", "yearly"]),
    prices,
    st.integers(0, 2000),
    st.integers(0, 2000),
)


@settings(deadline=None)  # schedules of a year or more: no flaky timing on a busy CI
@given(anchors, terms_st, st.lists(st.tuples(st.integers(1, 200), terms_st), max_size=4), gb, gb)
def test_total_is_the_sum_of_the_rounded_lines(
    anchor: date,
    first: Terms,
    changes: list[tuple[int, Terms]],
    storage: Decimal,
    bandwidth: Decimal,
) -> None:
    rows = [HistoryRow("s", "t", 1, anchor, "start", first)]
    day = anchor
    for i, (gap, terms) in enumerate(changes):
        day = day + timedelta(days=gap)
        rows.append(HistoryRow("s", "t", i + 2, day, "change", terms))
    for period in schedule.periods("t", rows, until=day + timedelta(days=400)):
        lines = price_period(period, Usage(storage, bandwidth))
        amounts = [ln.amount for ln in lines]
        assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
        assert total(lines) == sum(amounts, Decimal(0))
        assert pricing.cost_of(lines, "storage") >= 0
        assert pricing.cost_of(lines, "bandwidth") >= 0


@given(anchors, st.integers(0, 40))
def test_periods_follow_the_anchor_day(anchor: date, k: int) -> None:
    start, end = add_months(anchor, k), add_months(anchor, k + 1)
    for boundary in (start, end):
        last = calendar.monthrange(boundary.year, boundary.month)[1]
        assert boundary.day == min(anchor.day, last)
    assert 28 <= (end - start).days <= 31
    assert period_containing(anchor, start) == (start, end)
    assert period_containing(anchor, end - timedelta(days=1)) == (start, end)


@settings(deadline=None)
@given(anchors, st.integers(0, 40), st.data(), prices, st.integers(0, 100), st.integers(0, 100))
def test_a_terms_change_at_any_day_keeps_the_month_within_a_cent(
    anchor: date,
    k: int,
    data: st.DataObject,
    price: Decimal,
    storage_a: int,
    storage_b: int,
) -> None:
    """Same price, different included storage: the two base lines add up to the price ±1¢."""
    start, end = add_months(anchor, k), add_months(anchor, k + 1)
    cut = data.draw(st.integers(1, (end - start).days - 1))
    a = _terms("starter", "monthly", price, storage_a, 100)
    b = _terms("starter", "monthly", price, storage_b + storage_a + 1, 100)
    rows = [
        HistoryRow("s", "t", 1, anchor, "start", a),
        HistoryRow("s", "t", 2, start + timedelta(days=cut), "change", b),
    ]
    (period,) = [p for p in schedule.periods("t", rows, until=end) if p.start == start]
    base = pricing.cost_of(price_period(period, Usage(Decimal(0), Decimal(0))), "base")
    assert abs(base - price) <= Decimal("0.01")
    assert period.included == b


def test_cents_is_half_up_whatever_the_context() -> None:
    assert cents(Decimal("2.675")) == Decimal("2.68")
    assert cents(Decimal("0.025")) == Decimal("0.03")
    assert cents(Decimal("-0.025")) == Decimal("-0.03")


# Found by scripts/mutation: the lines' words, pro-rating's refusals and the yearly term's
# boundary, which no test pinned down.


def test_overage_lines_say_what_was_used_and_included() -> None:
    storage = overage_line("storage", Decimal("12.5"), 10, Decimal("0.10"))
    bandwidth = overage_line("bandwidth", Decimal("7"), 10, Decimal("0.05"))
    assert storage.description == "Storage: 12.50 GB average, 10 GB included, 2.50 GB over"
    assert bandwidth.description == "Bandwidth: 7.00 GB used, 10 GB included, 0.00 GB over"
    assert (storage.amount, bandwidth.amount) == (Decimal("0.25"), Decimal("0.00"))


@given(st.integers(min_value=1, max_value=31))
def test_prorate_takes_zero_to_all_days_of_a_period_and_refuses_the_rest(days: int) -> None:
    assert prorate(Decimal("31.00"), 0, days) == Decimal("0.00")
    assert prorate(Decimal("31.00"), days, days) == Decimal("31.00")
    for bad_days, bad_period in ((days + 1, days), (-1, days), (0, 0), (0, -days)):
        with pytest.raises(ValueError, match=f"cannot pro-rate {bad_days} days of a"):
            prorate(Decimal("31.00"), bad_days, bad_period)


def test_a_yearly_term_turns_exactly_twelve_months_after_the_anchor() -> None:
    anchor = date(2026, 1, 31)
    first = (date(2026, 1, 31), date(2027, 1, 31))
    second = (date(2027, 1, 31), date(2028, 1, 31))
    assert yearly_term_containing(anchor, date(2027, 1, 30)) == first  # one day under
    assert yearly_term_containing(anchor, date(2027, 1, 31)) == second  # exactly at
    assert yearly_term_containing(anchor, date(2027, 2, 1)) == second  # one day over
    with pytest.raises(ValueError, match="2026-01-30 is before the anchor 2026-01-31"):
        yearly_term_containing(anchor, date(2026, 1, 30))
