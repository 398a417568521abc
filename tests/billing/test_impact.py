"""Cost impact of plan changes (what `hosting plan` shows), checked against hand-worked sums."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from hosting.billing import impact, subscriptions
from hosting.billing.schedule import Terms
from tests.billing.helpers import make_spec, tenant

STARTER_M = Terms("starter", "monthly", Decimal("9.99"), Decimal("99.90"), 10, 100)
PRO_M = Terms("pro", "monthly", Decimal("29.99"), Decimal("299.90"), 50, 500)
STARTER_Y = Terms("starter", "yearly", Decimal("9.99"), Decimal("99.90"), 10, 100)
PRO_Y = Terms("pro", "yearly", Decimal("29.99"), Decimal("299.90"), 50, 500)


def test_monthly_upgrade_is_prorated() -> None:
    # Mar 5 → Apr 5 (31 days), change on Mar 20: 9.99×15/31 → 4.83, 29.99×16/31 → 15.48;
    # 20.31 instead of 9.99: +10.32.
    got = impact.monthly_cost_impact(STARTER_M, PRO_M, date(2025, 3, 20), date(2025, 3, 5))
    assert (got.old_base, got.new_base, got.delta) == (
        Decimal("9.99"),
        Decimal("20.31"),
        Decimal("10.32"),
    )
    assert (got.period_start, got.period_end) == (date(2025, 3, 5), date(2025, 4, 5))


def test_yearly_upgrade_charges_the_new_term_less_the_credit() -> None:
    # Term 2025-01-01 → 2026-01-01; Mar 1 → Apr 1 has no base without the change. With it:
    # pro yearly 299.90 − 99.90×297/365 (81.29) = 218.61.
    got = impact.monthly_cost_impact(STARTER_Y, PRO_Y, date(2025, 3, 10), date(2025, 1, 1))
    assert (got.old_base, got.new_base, got.delta) == (
        Decimal("0.00"),
        Decimal("218.61"),
        Decimal("218.61"),
    )
    assert [ln.kind for ln in got.lines] == ["base", "credit"]


def test_store_backed_impacts_for_change_end_and_new(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(
        db,
        make_spec({"a": tenant("starter", date(2025, 6, 1)), "b": tenant("pro", date(2025, 6, 1))}),
        date(2025, 6, 1),
    )
    spec = make_spec(
        {"b": tenant("starter", date(2025, 6, 1)), "c": tenant("free", date(2025, 6, 20))}
    )
    found = {i.tenant: i for i in impact.plan_impacts(db, spec, date(2025, 6, 13))}
    # a ends Jun 13: 9.99 × 12/30 = 3.996 → 4.00 instead of 9.99: −5.99.
    assert (found["a"].change, found["a"].new_base, found["a"].delta) == (
        "end",
        Decimal("4.00"),
        Decimal("-5.99"),
    )
    # b pro → starter Jun 13 (30-day period): 29.99×12/30 = 11.996 → 12.00;
    # 9.99×18/30 = 5.994 → 5.99; 17.99 instead of 29.99: −12.00.
    assert (found["b"].new_base, found["b"].delta) == (Decimal("17.99"), Decimal("-12.00"))
    # c is new: starts on its `started` day on free: 0.00.
    assert (found["c"].change, found["c"].effective, found["c"].delta) == (
        "start",
        date(2025, 6, 20),
        Decimal("0.00"),
    )
    # Nothing was recorded by the preview.
    assert (
        subscriptions.sync(
            db,
            make_spec(
                {"a": tenant("starter", date(2025, 6, 1)), "b": tenant("pro", date(2025, 6, 1))}
            ),
            date(2025, 6, 13),
        ).changes
        == []
    )
