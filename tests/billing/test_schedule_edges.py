"""Subscription history edge cases and the fields of the yearly and credit lines (pure).

Found by scripts/mutation: each test pins a boundary that a mutant moved without any other
test noticing. Expected values are worked by hand in the comments; "→" is the rounding to
cents (or to the 12 places of a quantity), half up. Periods and segments are [start, end).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from hosting.billing.pricing import Line, base_lines
from hosting.billing.schedule import (
    Credit,
    HistoryRow,
    Segment,
    Terms,
    current_segment,
    periods,
    segments,
)

D = date
STARTER = Terms("starter", "monthly", Decimal("9.99"), Decimal("99.90"), 10, 100)
PRO = Terms("pro", "monthly", Decimal("29.99"), Decimal("299.90"), 50, 500)
PRO_YEARLY = Terms("pro", "yearly", Decimal("29.99"), Decimal("299.90"), 50, 500)
STARTER_YEARLY = Terms("starter", "yearly", Decimal("9.99"), Decimal("99.90"), 10, 100)


def history(*rows: tuple[date, str, Terms | None], sub: str = "s1") -> list[HistoryRow]:
    return [
        HistoryRow(sub, "acme", seq, day, event, terms)
        for seq, (day, event, terms) in enumerate(rows, start=1)
    ]


def test_segments_carry_their_subscription_anchor_and_days() -> None:
    rows = history(
        (D(2025, 1, 10), "start", STARTER),
        (D(2025, 2, 20), "change", PRO),  # monthly → monthly: the anchor stays Jan 10
        (D(2025, 3, 5), "end", None),
    )
    (sub,) = segments(rows)
    assert sub.subscription_id == "s1"
    assert sub.segments == [
        Segment("s1", D(2025, 1, 10), D(2025, 2, 20), STARTER, D(2025, 1, 10)),
        Segment("s1", D(2025, 2, 20), D(2025, 3, 5), PRO, D(2025, 1, 10)),
    ]
    assert current_segment(rows) is None  # ended: no open segment
    assert current_segment(rows[:2]) == Segment("s1", D(2025, 2, 20), None, PRO, D(2025, 1, 10))


def test_same_day_rows_are_one_change_and_the_last_one_wins() -> None:
    # A start corrected on its own day: one segment, on the corrected terms.
    (sub,) = segments(history((D(2025, 1, 1), "start", STARTER), (D(2025, 1, 1), "change", PRO)))
    assert sub.segments == [Segment("s1", D(2025, 1, 1), None, PRO, D(2025, 1, 1))]
    # A correction on the third day of history belongs to that day, not to an earlier one.
    (sub,) = segments(
        history(
            (D(2025, 1, 1), "start", STARTER),
            (D(2025, 2, 1), "change", PRO),
            (D(2025, 3, 1), "change", PRO_YEARLY),
            (D(2025, 3, 1), "change", STARTER),
        )
    )
    assert sub.segments == [
        Segment("s1", D(2025, 1, 1), D(2025, 2, 1), STARTER, D(2025, 1, 1)),
        Segment("s1", D(2025, 2, 1), D(2025, 3, 1), PRO, D(2025, 1, 1)),
        Segment("s1", D(2025, 3, 1), None, STARTER, D(2025, 1, 1)),
    ]


def test_a_change_back_to_the_same_terms_is_no_change_and_later_ones_still_count() -> None:
    rows = history(
        (D(2025, 1, 1), "start", STARTER),
        (D(2025, 2, 10), "change", PRO),
        (D(2025, 2, 10), "change", STARTER),  # corrected back the same day: nothing changed
        (D(2025, 3, 10), "change", PRO),
    )
    (sub,) = segments(rows)
    assert sub.segments == [
        Segment("s1", D(2025, 1, 1), D(2025, 3, 10), STARTER, D(2025, 1, 1)),
        Segment("s1", D(2025, 3, 10), None, PRO, D(2025, 1, 1)),
    ]


def test_started_and_ended_the_same_day_has_no_segment_and_others_still_count() -> None:
    rows = [
        *history((D(2025, 1, 1), "start", STARTER), (D(2025, 1, 1), "end", None)),
        *history((D(2025, 2, 1), "start", PRO), sub="s2"),
    ]
    assert [(s.subscription_id, s.segments) for s in segments(rows)] == [
        ("s1", []),
        ("s2", [Segment("s2", D(2025, 2, 1), None, PRO, D(2025, 2, 1))]),
    ]


def test_rows_after_an_end_do_not_restart_the_subscription() -> None:
    rows = history(
        (D(2025, 1, 1), "start", STARTER),
        (D(2025, 2, 1), "end", None),
        (D(2025, 3, 1), "change", PRO),
    )
    (sub,) = segments(rows)
    assert sub.segments == [Segment("s1", D(2025, 1, 1), D(2025, 2, 1), STARTER, D(2025, 1, 1))]
    assert current_segment(rows) is None


@pytest.mark.parametrize(
    ("until", "starts"),
    [
        (D(2025, 3, 31), [D(2025, 3, 1)]),  # one day under the next period's start
        (D(2025, 4, 1), [D(2025, 3, 1)]),  # exactly at it: that period starts on `until`
        (D(2025, 4, 2), [D(2025, 3, 1), D(2025, 4, 1)]),  # one day over
    ],
)
def test_periods_are_those_that_start_before_until(until: date, starts: list[date]) -> None:
    rows = history((D(2025, 3, 1), "start", STARTER))
    assert [p.start for p in periods("acme", rows, until)] == starts


@pytest.mark.parametrize(
    ("end", "bounds"),
    [
        (D(2025, 3, 31), [(D(2025, 3, 1), D(2025, 3, 31))]),  # one day under
        (D(2025, 4, 1), [(D(2025, 3, 1), D(2025, 4, 1))]),  # exactly at: no empty period
        (D(2025, 4, 2), [(D(2025, 3, 1), D(2025, 4, 1)), (D(2025, 4, 1), D(2025, 4, 2))]),
    ],
)
def test_an_end_on_a_period_boundary_leaves_no_empty_period(
    end: date, bounds: list[tuple[date, date]]
) -> None:
    rows = history((D(2025, 3, 1), "start", STARTER), (end, "end", None))
    assert [(p.start, p.end) for p in periods("acme", rows, D(2025, 7, 1))] == bounds


@pytest.mark.parametrize(
    ("change", "march_included"),
    [
        (D(2025, 3, 31), PRO),  # one day under: pro holds on March's last day
        (D(2025, 4, 1), STARTER),  # exactly on the next period's start
        (D(2025, 4, 2), STARTER),  # one day over
    ],
)
def test_the_included_amounts_are_the_plan_of_the_periods_last_day(
    change: date, march_included: Terms
) -> None:
    rows = history((D(2025, 3, 1), "start", STARTER), (change, "change", PRO))
    first, second = periods("acme", rows, D(2025, 4, 2))
    assert (first.start, first.end, first.included) == (D(2025, 3, 1), D(2025, 4, 1),
                                                        march_included)  # fmt: skip
    # Apr 1 → May 1: pro on its last day (Apr 30) in every case.
    assert (second.start, second.included) == (D(2025, 4, 1), PRO)


def test_a_yearly_terms_change_keeps_the_term_charged_at_its_start() -> None:
    # Starter yearly from 2025-01-01; its price changes in the file on Jan 20 (same plan and
    # cycle: the anchor and the term stay). The term was charged on Jan 1 at the old price;
    # the next term, 2026-01-01, at the new one.
    cheaper = Terms("starter", "yearly", Decimal("9.99"), Decimal("89.90"), 10, 100)
    rows = history((D(2025, 1, 1), "start", STARTER_YEARLY), (D(2025, 1, 20), "change", cheaper))
    by_start = {p.start: p for p in periods("acme", rows, D(2026, 1, 2))}
    assert by_start[D(2025, 1, 1)].yearly_charge == STARTER_YEARLY
    assert by_start[D(2025, 2, 1)].yearly_charge is None
    assert by_start[D(2026, 1, 1)].yearly_charge == cheaper
    assert [ln.amount for ln in base_lines(by_start[D(2025, 1, 1)])] == [Decimal("99.90")]


# Yearly pro from 2025-01-01 (term to 2026-01-01: 365 days) → starter monthly: the change
# day starts a new anchor, and the old term's unused days, change day → 2026-01-01, are
# credited at 299.90 × unused ÷ 365 in the period that starts on the change day.
@pytest.mark.parametrize(
    ("change", "unused", "qty", "amount"),
    [
        # two days under the anniversary: 299.90 × 2/365 = 1.64328… → −1.64;
        # 2/365 = 0.005479452054794… → 0.005479452055
        (D(2025, 12, 30), 2, "-0.005479452055", "-1.64"),
        # one day under: 299.90 × 1/365 = 0.82164… → −0.82; 1/365 = 0.002739726027397… →
        # 0.002739726027
        (D(2025, 12, 31), 1, "-0.002739726027", "-0.82"),
    ],
)
def test_leaving_a_yearly_term_credits_its_unused_days(
    change: date, unused: int, qty: str, amount: str
) -> None:
    rows = history((D(2025, 1, 1), "start", PRO_YEARLY), (change, "change", STARTER))
    (period,) = [p for p in periods("acme", rows, D(2026, 3, 1)) if p.start == change]
    credit = Credit(PRO_YEARLY, unused, 365, D(2025, 1, 1), D(2026, 1, 1))
    assert period.credits == (credit,)
    assert base_lines(period)[-1] == Line(
        "credit",
        f"Credit: {unused} unused of 365 days of Pro (yearly, 2025-01-01 to 2026-01-01)",
        Decimal(qty),
        Decimal("299.90"),
        Decimal(amount),
        "pro",
    )


def test_leaving_a_yearly_term_on_its_anniversary_credits_nothing() -> None:
    # Exactly at the anniversary: the old term ended the day before; no unused day, no line.
    rows = history((D(2025, 1, 1), "start", PRO_YEARLY), (D(2026, 1, 1), "change", STARTER))
    by_start = {p.start: p for p in periods("acme", rows, D(2026, 3, 1))}
    assert all(p.credits == () for p in by_start.values())
    assert [ln.kind for ln in base_lines(by_start[D(2026, 1, 1)])] == ["base"]
    # …and the old term's twelve periods charged it once, on 2025-01-01.
    charged = [p.start for p in by_start.values() if p.yearly_charge is not None]
    assert charged == [D(2025, 1, 1)]


def test_the_yearly_line_names_its_term_and_counts_one() -> None:
    # A term that starts on Feb 29 ends twelve months later on Feb 28 (clamped), not Mar 29.
    rows = history((D(2024, 2, 29), "start", PRO_YEARLY))
    (first, *_) = periods("acme", rows, D(2024, 3, 1))
    assert base_lines(first) == [
        Line(
            "base",
            "Pro plan (yearly), 2024-02-29 to 2025-02-28",
            Decimal(1),
            Decimal("299.90"),
            Decimal("299.90"),
            "pro",
        )
    ]


def test_monthly_lines_say_how_many_days_of_the_period_they_cover() -> None:
    # Mar 5 → Apr 5 (31 days), starter → pro on Mar 20: starter 15 days, 9.99 × 15/31 =
    # 4.83387… → 4.83, quantity 15/31 = 0.483870967741935… → 0.483870967742; pro 16 days,
    # 29.99 × 16/31 = 15.47870… → 15.48, quantity 16/31 = 0.516129032258064… → 0.516129032258.
    rows = history((D(2025, 3, 5), "start", STARTER), (D(2025, 3, 20), "change", PRO))
    split, whole = periods("acme", rows, D(2025, 4, 6))
    assert base_lines(split) == [
        Line("base", "Starter plan (monthly), 15 of 31 days", Decimal("0.483870967742"),
             Decimal("9.99"), Decimal("4.83"), "starter"),
        Line("base", "Pro plan (monthly), 16 of 31 days", Decimal("0.516129032258"),
             Decimal("29.99"), Decimal("15.48"), "pro"),
    ]  # fmt: skip
    # Apr 5 → May 5, all pro: the whole period, no day count in the words.
    assert base_lines(whole) == [
        Line("base", "Pro plan (monthly)", Decimal(1), Decimal("29.99"), Decimal("29.99"), "pro")
    ]
