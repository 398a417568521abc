"""Every field of a plan change's cost impact (pure), compared whole, for each kind of change.

Found by scripts/mutation (target `invoices`): the other impact tests read only the amounts,
so the plans, cycles, dates, lines and notes that `hosting plan` shows went unchecked, and no
test reached the "no change" answers at all. Amounts are worked by hand in the comments; "→"
is the rounding to cents (or to a quantity's 12 places), half up.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from hosting.billing.impact import CostImpact, cost_impact, monthly_cost_impact, plan_impacts
from hosting.billing.pricing import Line
from hosting.billing.schedule import HistoryRow, Terms
from tests.billing.helpers import make_spec, tenant

D = date
STARTER_M = Terms("starter", "monthly", Decimal("9.99"), Decimal("99.90"), 10, 100)
STARTER_M_DEARER = Terms("starter", "monthly", Decimal("12.99"), Decimal("129.90"), 10, 100)
PRO_M = Terms("pro", "monthly", Decimal("29.99"), Decimal("299.90"), 50, 500)
STARTER_Y = Terms("starter", "yearly", Decimal("9.99"), Decimal("99.90"), 10, 100)
PRO_Y = Terms("pro", "yearly", Decimal("29.99"), Decimal("299.90"), 50, 500)
ZERO = Decimal("0.00")


def started(day: date, terms: Terms, *, ended: date | None = None) -> list[HistoryRow]:
    rows = [HistoryRow("s1", "acme", 1, day, "start", terms)]
    if ended is not None:
        rows.append(HistoryRow("s1", "acme", 2, ended, "end", None))
    return rows


def nothing(as_of: date, terms: Terms | None) -> CostImpact:
    plan, cycle = (terms.plan, terms.cycle) if terms else (None, None)
    return CostImpact("acme", "none", as_of, plan, cycle, plan, cycle, None, None,
                      ZERO, ZERO, ZERO, (), "no change")  # fmt: skip


def test_a_tenant_not_subscribed_starts_on_the_day() -> None:
    full = Line("base", "Starter plan (monthly)", Decimal(1), Decimal("9.99"), Decimal("9.99"),
                "starter")  # fmt: skip
    want = CostImpact("acme", "start", D(2025, 3, 5), None, None, "starter", "monthly",
                      D(2025, 3, 5), D(2025, 4, 5), ZERO, Decimal("9.99"), Decimal("9.99"),
                      (full,), "starts on starter (monthly) on 2025-03-05")  # fmt: skip
    assert cost_impact("acme", [], STARTER_M, D(2025, 3, 5)) == want
    # An ended subscription is no subscription: coming back is a start too.
    ended = started(D(2024, 1, 5), PRO_M, ended=D(2024, 6, 1))
    assert cost_impact("acme", ended, STARTER_M, D(2025, 3, 5)) == want


@pytest.mark.parametrize(
    ("rows", "new", "as_of", "want"),
    [
        # not subscribed and nothing to subscribe to
        ([], None, D(2025, 3, 5), nothing(D(2025, 3, 5), None)),
        # the same terms again
        (started(D(2025, 3, 5), STARTER_M), STARTER_M, D(2025, 3, 20),
         nothing(D(2025, 3, 20), STARTER_M)),
        # recorded to start on Jul 1: on Jun 13 no period is running yet
        (started(D(2025, 7, 1), STARTER_M), PRO_M, D(2025, 6, 13),
         nothing(D(2025, 6, 13), STARTER_M)),
    ],
)  # fmt: skip
def test_no_change_costs_nothing_and_says_so(
    rows: list[HistoryRow], new: Terms | None, as_of: date, want: CostImpact
) -> None:
    assert cost_impact("acme", rows, new, as_of) == want


def test_a_monthly_upgrade_is_prorated_by_days() -> None:
    # Mar 5 → Apr 5 (31 days), starter → pro on Mar 20: 9.99 × 15/31 → 4.83 (quantity
    # 15/31 → 0.483870967742), 29.99 × 16/31 → 15.48 (16/31 → 0.516129032258): 20.31
    # instead of 9.99, +10.32.
    want = CostImpact("tenant", "change", D(2025, 3, 20), "starter", "monthly", "pro",
                      "monthly", D(2025, 3, 5), D(2025, 4, 5), Decimal("9.99"),
                      Decimal("20.31"), Decimal("10.32"), (
                          Line("base", "Starter plan (monthly), 15 of 31 days",
                               Decimal("0.483870967742"), Decimal("9.99"), Decimal("4.83"),
                               "starter"),
                          Line("base", "Pro plan (monthly), 16 of 31 days",
                               Decimal("0.516129032258"), Decimal("29.99"), Decimal("15.48"),
                               "pro"),
                      ), "pro-rated: 15 of 31 days on starter, the rest on pro")  # fmt: skip
    assert monthly_cost_impact(STARTER_M, PRO_M, D(2025, 3, 20), D(2025, 3, 5)) == want


@pytest.mark.parametrize(
    ("as_of", "start", "end"),
    [
        (D(2025, 4, 4), D(2025, 3, 5), D(2025, 4, 5)),  # one day under the next period
        (D(2025, 4, 5), D(2025, 4, 5), D(2025, 5, 5)),  # exactly on it
        (D(2025, 4, 6), D(2025, 4, 5), D(2025, 5, 5)),  # one day over
    ],
)
def test_the_running_period_is_the_one_that_holds_the_day(
    as_of: date, start: date, end: date
) -> None:
    got = monthly_cost_impact(STARTER_M, PRO_M, as_of, D(2025, 3, 5))
    assert (got.period_start, got.period_end, got.old_base) == (start, end, Decimal("9.99"))
    days = (as_of - start).days
    total = (end - start).days
    assert got.note == f"pro-rated: {days} of {total} days on starter, the rest on pro"


def test_a_change_on_the_first_day_of_a_period_moves_all_of_it() -> None:
    # Apr 5 → May 5 (30 days) all on pro: 29.99 instead of 9.99, +20.00.
    got = monthly_cost_impact(STARTER_M, PRO_M, D(2025, 4, 5), D(2025, 3, 5))
    assert (got.old_base, got.new_base, got.delta) == (Decimal("9.99"), Decimal("29.99"),
                                                       Decimal("20.00"))  # fmt: skip
    assert got.lines == (
        Line("base", "Pro plan (monthly)", Decimal(1), Decimal("29.99"), Decimal("29.99"),
             "pro"),
    )  # fmt: skip


def test_an_end_cuts_the_running_period() -> None:
    # Jun 1 → Jul 1 (30 days) cut on Jun 13: 9.99 × 12/30 = 3.996 → 4.00 (quantity 0.4):
    # 4.00 instead of 9.99, −5.99.
    want = CostImpact("acme", "end", D(2025, 6, 13), "starter", "monthly", None, None,
                      D(2025, 6, 1), D(2025, 7, 1), Decimal("9.99"), Decimal("4.00"),
                      Decimal("-5.99"), (
                          Line("base", "Starter plan (monthly), 12 of 30 days",
                               Decimal("0.4"), Decimal("9.99"), Decimal("4.00"), "starter"),
                      ), "ends on 2025-06-13: the running period is cut there")  # fmt: skip
    assert cost_impact("acme", started(D(2025, 6, 1), STARTER_M), None, D(2025, 6, 13)) == want


def test_a_terms_change_keeps_the_plan_and_prorates_the_prices() -> None:
    # Mar 5 → Apr 5 (31 days), starter's price 9.99 → 12.99 on Mar 20: 9.99 × 15/31 → 4.83;
    # 12.99 × 16/31 = 207.84/31 = 6.70451… → 6.70: 11.53 instead of 9.99, +1.54.
    got = monthly_cost_impact(STARTER_M, STARTER_M_DEARER, D(2025, 3, 20), D(2025, 3, 5))
    assert (got.change, got.new_plan, got.new_cycle) == ("change", "starter", "monthly")
    assert [(ln.description, ln.amount) for ln in got.lines] == [
        ("Starter plan (monthly), 15 of 31 days", Decimal("4.83")),
        ("Starter plan (monthly), 16 of 31 days", Decimal("6.70")),
    ]
    assert (got.new_base, got.delta) == (Decimal("11.53"), Decimal("1.54"))
    assert got.note == "starter (monthly) terms change on 2025-03-20"


def test_leaving_a_yearly_term_starts_a_new_one_and_credits_the_old() -> None:
    # Starter yearly since 2025-01-01 → pro yearly on Mar 10. Running: Mar 1 → Apr 1, no base
    # (not the anniversary). With the change: pro yearly 299.90 for 2025-03-10 → 2026-03-10,
    # and a credit of 99.90 × 297/365 = 81.288… → −81.29 (quantity −297/365 →
    # −0.813698630137): 218.61.
    want = CostImpact("tenant", "change", D(2025, 3, 10), "starter", "yearly", "pro", "yearly",
                      D(2025, 3, 1), D(2025, 4, 1), ZERO, Decimal("218.61"), Decimal("218.61"), (
                          Line("base", "Pro plan (yearly), 2025-03-10 to 2026-03-10",
                               Decimal(1), Decimal("299.90"), Decimal("299.90"), "pro"),
                          Line("credit", "Credit: 297 unused of 365 days of Starter (yearly, "
                               "2025-01-01 to 2026-01-01)", Decimal("-0.813698630137"),
                               Decimal("99.90"), Decimal("-81.29"), "starter"),
                      ), "a new yearly term starts on 2025-03-10, the old yearly term's unused "
                      "days are credited")  # fmt: skip
    assert monthly_cost_impact(STARTER_Y, PRO_Y, D(2025, 3, 10), D(2025, 1, 1)) == want


def test_moving_to_yearly_starts_a_term_with_no_credit() -> None:
    # Starter monthly since Jan 20 → starter yearly on Feb 5: Jan 20 → Feb 20 (31 days) is cut
    # at Feb 5: 9.99 × 16/31 → 5.16; the new term's first period charges 99.90: 105.06 instead
    # of 9.99, +95.07.
    got = monthly_cost_impact(STARTER_M, STARTER_Y, D(2025, 2, 5), D(2025, 1, 20))
    assert [(ln.kind, ln.description, ln.amount) for ln in got.lines] == [
        ("base", "Starter plan (monthly), 16 of 31 days", Decimal("5.16")),
        ("base", "Starter plan (yearly), 2025-02-05 to 2026-02-05", Decimal("99.90")),
    ]
    assert (got.old_base, got.new_base, got.delta) == (Decimal("9.99"), Decimal("105.06"),
                                                       Decimal("95.07"))  # fmt: skip
    assert got.note == "a new yearly term starts on 2025-02-05"


def test_without_a_store_every_tenant_of_the_file_starts(tmp_path: Path) -> None:
    spec = make_spec({"acme": tenant("starter", date(2025, 3, 5))})
    (got,) = plan_impacts(tmp_path / "never-created.duckdb", spec, D(2025, 3, 20))
    assert (got.tenant, got.change, got.effective, got.new_base) == (
        "acme",
        "start",
        D(2025, 3, 5),
        Decimal("9.99"),
    )
    assert not (tmp_path / "never-created.duckdb").exists()  # a preview creates nothing
