"""`hosting usage TENANT` in process (real DuckDB files): why there is no running period, a
tenant not synced yet, and today's usage counted up to now, not to midnight.

Found by scripts/mutation (target `invoices`): these answers were only reached through the
CLI's subprocess, where mutation testing does not look, or not at all. The clock is the one
thing replaced: `current.utcnow` stands for "now", so that "today" is a day of our choosing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hosting.billing import current, invoices, subscriptions
from hosting.errors import BillingError, NotFoundError
from tests.billing.helpers import GIB, add_bandwidth, add_storage, make_spec, tenant


def test_before_its_first_period_the_tenant_is_told_when_it_starts(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 7, 1))})
    subscriptions.sync(db, spec, date(2025, 6, 1))
    with pytest.raises(BillingError) as info:
        current.usage(db, spec, "acme", date(2025, 6, 13))
    assert info.value.message == (
        "acme has no running billing period on 2025-06-13: its first billing period starts "
        "on 2025-07-01"
    )


@pytest.mark.parametrize(("as_of", "said"), [(date(2025, 7, 1), "2025-07-01"), (None, "today")])
def test_after_an_end_the_tenant_is_pointed_at_its_invoices(
    tmp_path: Path, as_of: date | None, said: str
) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"acme": tenant("starter", date(2025, 6, 1))}),
                       date(2025, 6, 1))  # fmt: skip
    subscriptions.sync(db, make_spec({}), date(2025, 6, 13))
    with pytest.raises(BillingError) as info:
        current.usage(db, make_spec({}), "acme", as_of)
    assert info.value.message == (
        f"acme has no running billing period on {said}: its subscription has ended"
    )
    assert info.value.hint == "its invoices: `hosting invoice list --tenant acme`"


def test_a_tenant_in_the_file_but_not_synced_shows_its_first_period(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1))})
    u = current.usage(db, spec, "acme", date(2025, 6, 10))
    assert (u.tenant, u.as_of, u.period_start, u.period_end) == (
        "acme",
        date(2025, 6, 10),
        date(2025, 6, 1),
        date(2025, 7, 1),
    )
    assert (u.storage_included_gb, u.bandwidth_included_gb) == (10, 100)  # starter's
    assert (u.base_cost, u.projected_cost) == (Decimal("9.99"), Decimal("9.99"))


def test_the_base_cost_so_far_includes_a_yearly_terms_credit(tmp_path: Path) -> None:
    # Pro yearly from 2024-02-01 (term to 2025-02-01: 366 days) → starter monthly on
    # 2024-11-16. Nov 16 → Dec 16: starter 9.99 and a credit of 299.90 × 77/366 = 63.0937… →
    # −63.09 for Nov 16 → Feb 1 (15 + 31 + 31 = 77 days): −53.10.
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"acme": tenant("pro", date(2024, 2, 1), "yearly")}),
                       date(2024, 2, 1))  # fmt: skip
    spec = make_spec({"acme": tenant("starter", date(2024, 2, 1))})
    subscriptions.sync(db, spec, date(2024, 11, 16))
    u = current.usage(db, spec, "acme", date(2024, 11, 20))
    assert [(ln.kind, ln.amount) for ln in u.projected_lines] == [
        ("base", Decimal("9.99")),
        ("credit", Decimal("-63.09")),
        ("storage", Decimal("0.00")),
        ("bandwidth", Decimal("0.00")),
    ]
    assert u.base_cost == Decimal("-53.10")


def test_today_counts_up_to_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Jun 1 → Jul 1 (30 days); now is Jun 10 12:00, 9.5 days in; 9 GiB so far: at that rate
    # 9 × 30 / 9.5 = 540/19 = 28.42105263… GB by the period's end (to midnight it would be
    # 10 days: 27).
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1))})
    subscriptions.sync(db, spec, date(2025, 6, 1))
    add_bandwidth(db, "acme", [(datetime(2025, 6, 2), 9 * GIB)])
    monkeypatch.setattr(current, "utcnow", lambda: datetime(2025, 6, 10, 12))
    u = current.usage(db, spec, "acme", date(2025, 6, 10))
    assert u.bandwidth_gb == 9
    assert u.projected_bandwidth_gb.quantize(Decimal("0.000001")) == Decimal("28.421053")


def test_in_the_first_second_of_a_period_the_rate_is_over_one_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Now is exactly the period's start: usage so far covers one second, never zero. 1 GiB in
    # that second: 1 × 30 days × 86,400 s = 2,592,000 GB by the period's end.
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1))})
    subscriptions.sync(db, spec, date(2025, 6, 1))
    add_bandwidth(db, "acme", [(datetime(2025, 6, 1), GIB)])
    monkeypatch.setattr(current, "utcnow", lambda: datetime(2025, 6, 1))
    u = current.usage(db, spec, "acme", date(2025, 6, 1))
    assert (u.bandwidth_gb, u.projected_bandwidth_gb) == (Decimal(1), Decimal(2_592_000))


def test_an_unknown_tenant_is_told_which_tenants_there_are(tmp_path: Path) -> None:
    # globex is only in the billing history (gone from the file), acme only in the file.
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"globex": tenant("starter", date(2025, 6, 1))}),
                       date(2025, 6, 1))  # fmt: skip
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1))})
    hints = []
    for file in (spec, None):
        with pytest.raises(NotFoundError) as info:
            current.usage(db, file, "initech", date(2025, 6, 10))
        assert info.value.message == "unknown tenant `initech`"
        hints.append(info.value.hint)
    with pytest.raises(NotFoundError) as empty:
        current.usage(tmp_path / "empty.duckdb", None, "initech", date(2025, 6, 10))
    hints.append(empty.value.hint)
    assert hints == [
        "tenants in the file or the billing history: acme, globex",
        "tenants in the file or the billing history: globex",
        "tenants in the file or the billing history: none",
    ]
    # `invoice run --tenant` refuses the same way.
    with pytest.raises(NotFoundError) as run:
        invoices.run(db, spec, date(2025, 6, 10), tenant="initech")
    assert run.value.hint == hints[0]


def test_the_active_subscription_shows_the_plan_limits_of_the_file(tmp_path: Path) -> None:
    # SPEC's plan table, starter: 9.99/99.90, 10 GB, 100 GB, 3 DBs, 10 APIs, 10 sites,
    # 1 CPU, 1024 MB, 100 MB/s, 100 Mbps.
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1))})
    subscriptions.sync(db, spec, date(2025, 6, 1))
    from_terms = {
        "storage_gb": 10,
        "bandwidth_gb": 100,
        "price_monthly": Decimal("9.99"),
        "price_yearly": Decimal("99.90"),
    }
    # Jul 1 is exactly the second period's first day.
    sub = current.active_subscription(db, spec, "acme", date(2025, 7, 1))
    assert (sub.status, sub.current_period_start, sub.current_period_end) == (
        "active",
        date(2025, 7, 1),
        date(2025, 8, 1),
    )
    assert sub.limits == {
        **from_terms,
        "databases": 3,
        "apis": 10,
        "websites": 10,
        "cpus": 1,
        "memory_mb": 1024,
        "disk_io_mbps": 100,
        "network_mbps": 100,
    }
    # Without the file, or with a file that no longer has the tenant: what was recorded.
    for file in (None, make_spec({})):
        assert current.active_subscription(db, file, "acme", date(2025, 7, 1)).limits == from_terms


def test_the_active_subscription_is_the_recorded_history_or_else_the_files(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"acme": tenant("starter", date(2025, 6, 1))}),
                       date(2025, 6, 1))  # fmt: skip
    # Both tenants in the file: acme now on pro (not synced yet), globex never synced.
    spec = make_spec(
        {"acme": tenant("pro", date(2025, 6, 1)), "globex": tenant("pro", date(2025, 6, 5))}
    )
    subscriptions.sync(db, make_spec({"acme": tenant("pro", date(2025, 6, 1))}),
                       date(2025, 6, 15))  # fmt: skip
    acme = current.active_subscription(db, spec, "acme", date(2025, 6, 20))
    assert acme.tenant == "acme"
    assert acme.subscription_id is not None and len(acme.subscription_id) == 36  # a uuid
    assert acme.history == (
        current.HistoryEntry(date(2025, 6, 1), "start", "starter", "monthly"),
        current.HistoryEntry(date(2025, 6, 15), "change", "pro", "monthly"),
    )
    # Not recorded: shown as sync would start it, on its own `started`, with no id yet.
    globex = current.active_subscription(db, spec, "globex", date(2025, 6, 20))
    assert (globex.subscription_id, globex.started, globex.current_period_start) == (
        None,
        date(2025, 6, 5),
        date(2025, 6, 5),
    )
    assert globex.history == (current.HistoryEntry(date(2025, 6, 5), "start", "pro", "monthly"),)


def test_the_active_subscription_is_as_of_the_day_asked(tmp_path: Path) -> None:
    # starter from Jun 1, pro from Jul 15, ended Aug 20.
    db = tmp_path / "s.duckdb"
    for plan, day in (("starter", date(2025, 6, 1)), ("pro", date(2025, 7, 15))):
        subscriptions.sync(db, make_spec({"acme": tenant(plan, date(2025, 6, 1))}), day)
    subscriptions.sync(db, make_spec({}), date(2025, 8, 20))
    june = current.active_subscription(db, None, "acme", date(2025, 6, 20))
    assert (june.status, june.plan, june.billing_cycle, june.started, june.anchor) == (
        "active",
        "starter",
        "monthly",
        date(2025, 6, 1),
        date(2025, 6, 1),
    )
    ended = current.active_subscription(db, None, "acme", date(2025, 9, 1))
    assert (ended.status, ended.plan, ended.current_period_start) == ("ended", "pro", None)


def test_a_subscription_started_and_ended_the_same_day_has_no_plan(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"acme": tenant("starter", date(2025, 6, 1))}),
                       date(2025, 6, 1))  # fmt: skip
    subscriptions.sync(db, make_spec({}), date(2025, 6, 1))
    sub = current.active_subscription(db, None, "acme", date(2025, 6, 5))
    assert (sub.status, sub.plan, sub.billing_cycle, sub.started, sub.anchor) == (
        "ended",
        None,
        None,
        None,
        None,
    )


def test_every_figure_of_a_past_day_with_storage_and_bandwidth_over(tmp_path: Path) -> None:
    # Starter (10 GB storage, 100 GB bandwidth included; 0.10/GB and 0.05/GB over) from
    # 2025-06-01, 10 % tax, asked as of 2025-06-10 (a past day: counted to its midnight, Jun 11,
    # 10 of the period's 30 days). Storage: 10 GiB from Jun 1, 40 GiB from Jun 6.
    # - storage so far: (10 × 5 + 40 × 5) ÷ 10 = 25 GB; now 40 GB;
    # - projected: (10 × 5 + 40 × 5 + 40 × 20) ÷ 30 = 1050 ÷ 30 = 35 GB → 25 over: 2.50;
    # - bandwidth: 60 GiB on Jun 2, so 60 GB so far; 60 × 30 ÷ 10 = 180 GB → 80 over: 4.00;
    # - net 9.99 + 2.50 + 4.00 = 16.49; tax 1.649 → 1.65; projected cost 18.14.
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 6, 1), tax_rate=10)})
    subscriptions.sync(db, spec, date(2025, 6, 1))
    add_storage(db, "acme", [(datetime(2025, 6, 1), "app", "volume", 10 * GIB),
                             (datetime(2025, 6, 6), "app", "volume", 40 * GIB)])  # fmt: skip
    add_bandwidth(db, "acme", [(datetime(2025, 6, 2), 60 * GIB)])
    u = current.usage(db, spec, "acme", date(2025, 6, 10))
    D = Decimal
    assert (u.storage_gb, u.storage_current_gb, u.projected_storage_gb) == (D(25), D(40), D(35))
    assert (u.bandwidth_gb, u.projected_bandwidth_gb) == (D(60), D(180))
    assert (u.base_cost, u.storage_cost, u.bandwidth_cost) == (
        Decimal("9.99"),
        Decimal("2.50"),
        Decimal("4.00"),
    )
    assert (u.tax_rate, u.projected_tax, u.projected_cost) == (
        Decimal("10"),
        Decimal("1.65"),
        Decimal("18.14"),
    )
