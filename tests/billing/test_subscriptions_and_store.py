"""Subscription history, transitions, the store's guarantees and refusals (real DuckDB files)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from hosting import store
from hosting.billing import current, invoices, subscriptions
from hosting.errors import BillingError, NotFoundError, UsageError
from tests.billing.helpers import GIB, add_bandwidth, add_storage, make_spec, tenant


def history(db: Path, tid: str) -> list[tuple[object, ...]]:
    with store.connect(db) as conn:
        return conn.execute(
            "SELECT effective, event, plan, billing_cycle FROM subscription_history "
            "WHERE tenant = ? ORDER BY seq",
            [tid],
        ).fetchall()


def test_sync_records_start_change_and_end(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    result = subscriptions.sync(
        db, make_spec({"a": tenant("starter", date(2025, 1, 10))}), date(2025, 3, 1)
    )
    # A new tenant starts on its `started`, not on the sync date.
    assert [(c.tenant, c.event, c.effective) for c in result.changes] == [
        ("a", "start", date(2025, 1, 10))
    ]
    subscriptions.sync(db, make_spec({"a": tenant("pro", date(2025, 1, 10))}), date(2025, 3, 5))
    # Unchanged file: nothing recorded.
    again = subscriptions.sync(
        db, make_spec({"a": tenant("pro", date(2025, 1, 10))}), date(2025, 3, 6)
    )
    assert again.changes == []
    subscriptions.sync(db, make_spec({}), date(2025, 4, 2))
    # Still gone on a later sync: nothing more is recorded.
    assert subscriptions.sync(db, make_spec({}), date(2025, 5, 2)).changes == []
    assert history(db, "a") == [
        (date(2025, 1, 10), "start", "starter", "monthly"),
        (date(2025, 3, 5), "change", "pro", "monthly"),
        (date(2025, 4, 2), "end", None, None),
    ]
    sub = current.active_subscription(db, None, "a", date(2025, 4, 2))
    assert sub.status == "ended" and sub.current_period_start is None
    # The period that contains Mar 20 runs from the anchor day Mar 10 and is cut by the end.
    sub = current.active_subscription(db, None, "a", date(2025, 3, 20))
    assert (sub.plan, sub.current_period_start, sub.current_period_end) == (
        "pro",
        date(2025, 3, 10),
        date(2025, 4, 2),
    )


def test_a_tenant_that_comes_back_gets_a_new_subscription(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", date(2025, 1, 10))})
    first = subscriptions.sync(db, spec, date(2025, 1, 10)).changes[0].subscription_id
    subscriptions.sync(db, make_spec({}), date(2025, 2, 1))
    back = subscriptions.sync(db, spec, date(2025, 5, 7)).changes
    assert [(c.event, c.effective) for c in back] == [("start", date(2025, 5, 7))]
    assert back[0].subscription_id != first
    invoices.run(db, spec, date(2025, 6, 7))
    periods = [(i.period_start.date(), i.period_end.date()) for i in invoices.list_invoices(db)]
    assert periods == [
        (date(2025, 1, 10), date(2025, 2, 1)),
        (date(2025, 5, 7), date(2025, 6, 7)),
    ]


def test_sync_refuses_to_rewrite_history_and_records_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(
        db,
        make_spec(
            {"a": tenant("starter", date(2025, 1, 1)), "b": tenant("starter", date(2025, 1, 1))}
        ),
        date(2025, 1, 1),
    )
    subscriptions.sync(
        db,
        make_spec({"a": tenant("pro", date(2025, 1, 1)), "b": tenant("starter", date(2025, 1, 1))}),
        date(2025, 3, 1),
    )
    before = history(db, "a") + history(db, "b")
    # Before the last change of `a`: refused, and `b`'s valid change is not recorded either.
    with pytest.raises(BillingError, match="already has a change on 2025-03-01"):
        subscriptions.sync(
            db,
            make_spec(
                {"a": tenant("free", date(2025, 1, 1)), "b": tenant("pro", date(2025, 1, 1))}
            ),
            date(2025, 2, 1),
        )
    assert history(db, "a") + history(db, "b") == before
    # Behind an invoice: refused.
    invoices.run(db, make_spec({"a": tenant("pro", date(2025, 1, 1))}), date(2025, 5, 1))
    with pytest.raises(BillingError, match="already invoiced"):
        subscriptions.sync(
            db, make_spec({"a": tenant("free", date(2025, 1, 1))}), date(2025, 4, 15)
        )
    assert history(db, "a") + history(db, "b") == before


def test_future_dates_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    tomorrow = datetime.now().date() + timedelta(days=2)
    spec = make_spec({"a": tenant("starter", date(2025, 1, 1))})
    for call in (
        lambda: subscriptions.sync(db, spec, tomorrow),
        lambda: invoices.run(db, spec, tomorrow),
        lambda: current.usage(db, spec, "a", tomorrow),
    ):
        with pytest.raises(UsageError, match="in the future"):
            call()
    assert invoices.list_invoices(db) == []


def test_same_day_correction_replaces_the_change(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"a": tenant("starter", date(2025, 3, 1))}), date(2025, 3, 1))
    subscriptions.sync(
        db, make_spec({"a": tenant("enterprise", date(2025, 3, 1))}), date(2025, 3, 11)
    )
    spec = make_spec({"a": tenant("pro", date(2025, 3, 1))})
    subscriptions.sync(db, spec, date(2025, 3, 11))
    (inv,) = invoices.run(db, spec, date(2025, 4, 1)).created
    # Mar 1 → Apr 1 (31 days): starter 10 days 9.99×10/31 = 3.2225… → 3.22;
    # pro 21 days 29.99×21/31 = 20.3158… → 20.32 (enterprise never counted). 23.54.
    assert [(ln.plan, str(ln.amount)) for ln in inv.lines if ln.kind == "base"] == [
        ("starter", "3.22"),
        ("pro", "20.32"),
    ]
    assert inv.amount == Decimal("23.54")


def test_plan_terms_changed_in_the_file_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"a": tenant("starter", date(2025, 3, 1))}), date(2025, 3, 1))
    spec = make_spec(
        {"a": tenant("starter", date(2025, 3, 1))}, plans={"starter": {"storage_gb": 20}}
    )
    changes = subscriptions.sync(db, spec, date(2025, 3, 17)).changes
    assert [(c.event, c.plan, c.effective) for c in changes] == [
        ("change", "starter", date(2025, 3, 17))
    ]
    add_storage(db, "a", [(datetime(2025, 3, 1), "w", "code", 15 * GIB)])
    (inv,) = invoices.run(db, spec, date(2025, 4, 1)).created
    # One base line per plan and price: 16 + 15 days of 31 at 9.99 = 9.99 × 31/31 = 9.99;
    # included storage is the last day's (20 GB): 15 GB is within, where 10 would not be.
    assert [str(ln.amount) for ln in inv.lines] == ["9.99", "0.00", "0.00"]
    assert inv.storage_included_gb == 20


def test_only_the_allowed_status_transitions(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", date(2025, 1, 1))})
    created = invoices.run(db, spec, date(2025, 6, 1)).created
    assert len(created) == 5
    allowed = {("pending", "paid"), ("pending", "failed"), ("failed", "paid"), ("paid", "refunded")}
    # Reach each status along allowed paths, then try every target from it.
    paths = {
        "pending": [],
        "failed": ["failed"],
        "paid": ["paid"],
        "refunded": ["paid", "refunded"],
    }
    for (source, path), inv in zip(paths.items(), created, strict=False):
        for step in path:
            invoices.mark(db, inv.invoice_number, step)
        for target in ("paid", "failed", "refunded"):
            if (source, target) in allowed:
                continue
            with pytest.raises(BillingError, match=f"is {source}; it cannot become {target}"):
                invoices.mark(db, inv.invoice_number, target)
            assert invoices.get_invoice(db, inv.invoice_number).status == source
    # Allowed moves set paid_at when paid and keep it when refunded.
    last = created[4]
    assert invoices.mark(db, last.invoice_number, "failed").paid_at is None
    paid = invoices.mark(db, last.invoice_number, "paid")
    assert paid.status == "paid" and paid.paid_at is not None
    refunded = invoices.mark(db, last.invoice_number, "refunded")
    assert refunded.paid_at == paid.paid_at
    with pytest.raises(NotFoundError):
        invoices.mark(db, "INV-20990101-000999", "paid")


def test_the_store_refuses_a_second_invoice_for_a_period(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", date(2025, 1, 1))})
    invoices.run(db, spec, date(2025, 2, 1))
    with store.connect(db) as conn, pytest.raises(duckdb.ConstraintException):
        conn.execute(
            "INSERT INTO billing_invoices SELECT * REPLACE "
            "('INV-X' AS invoice_number, 999 AS seq) FROM billing_invoices"
        )


def test_numbers_are_gapless_across_runs_and_tenants(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec(
        {
            "a": tenant("starter", date(2025, 1, 31)),
            "b": tenant("pro", date(2025, 2, 14), "yearly"),
            "c": tenant("free", date(2025, 3, 1)),
        }
    )
    for day in (date(2025, 3, 1), date(2025, 3, 1), date(2025, 5, 20), date(2025, 7, 1)):
        invoices.run(db, spec, day)
    found = invoices.list_invoices(db)
    assert [int(i.invoice_number[-6:]) for i in found] == list(range(1, len(found) + 1))
    assert len({(i.tenant, i.period_start) for i in found}) == len(found)
    for i in found:
        assert i.invoice_number[4:12] == f"{i.period_end:%Y%m%d}"
    with store.connect(db) as conn:
        row = conn.execute("SELECT last_value FROM billing_invoice_sequence").fetchone()
    assert row is not None and row[0] == len(found)


def test_usage_so_far_and_projection(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", date(2025, 4, 1))})
    subscriptions.sync(db, spec, date(2025, 4, 1))
    add_storage(
        db,
        "a",
        [
            (datetime(2025, 4, 1), "w", "code", 12 * GIB),
            (datetime(2025, 4, 6), "w", "code", 24 * GIB),
        ],
    )
    add_bandwidth(db, "a", [(datetime(2025, 4, 3), 40 * GIB), (datetime(2025, 5, 2), GIB)])
    u = current.usage(db, spec, "a", date(2025, 4, 10))
    # Apr 1 → May 1 (30 days); so far Apr 1 – Apr 10 = 10 days: (12×5 + 24×5)/10 = 18 GB.
    assert u.storage_gb == 18 and u.storage_current_gb == 24
    assert u.bandwidth_gb == 40 and u.bandwidth_included_gb == 100
    # Projection: storage stays at 24 GB: (12×5 + 24×25)/30 = 660/30 = 22 GB → over 12 →
    # 1.20; bandwidth 40 GB per 10 days → 120 GB → over 20 × 0.05 = 1.00; 9.99 + 2.20.
    assert u.projected_storage_gb == 22 and u.projected_bandwidth_gb == 120
    assert (u.storage_cost, u.bandwidth_cost, u.projected_cost) == (
        Decimal("1.20"),
        Decimal("1.00"),
        Decimal("12.19"),
    )
    with pytest.raises(NotFoundError, match="unknown tenant `zz`"):
        current.usage(db, spec, "zz", date(2025, 4, 10))
