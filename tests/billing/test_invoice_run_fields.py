"""`invoice run` read field by field, in process: one tenant's run, the count of periods
already invoiced, the buyer's name and email, the line numbers, the store's refusal, and what
sync returns.

Found by scripts/mutation (target invoices): these were checked only through the CLI's
subprocess, which mutation testing does not follow, or not at all.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hosting import store
from hosting.billing import invoices, subscriptions
from hosting.errors import BillingError
from tests.billing.helpers import make_spec, tenant

D = date


def periods(found: list[invoices.Invoice]) -> list[tuple[str, date]]:
    return [(i.tenant, i.period_start.date()) for i in found]


def test_a_run_for_one_tenant_invoices_that_tenant_only(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1)), "b": tenant("pro", D(2025, 1, 1))})
    first = invoices.run(db, spec, D(2025, 2, 1), tenant="a")
    assert periods(first.created) == [("a", D(2025, 1, 1))]
    assert first.already_invoiced == 0
    # b was recorded by the run (its start), but not invoiced.
    assert invoices.list_invoices(db, "b") == []
    # b's January is now invoiced; a's next run counts only a's January as done.
    invoices.run(db, spec, D(2025, 2, 1), tenant="b")
    second = invoices.run(db, spec, D(2025, 3, 1), tenant="a")
    assert periods(second.created) == [("a", D(2025, 2, 1))]
    assert second.already_invoiced == 1
    assert periods(invoices.list_invoices(db, "b")) == [("b", D(2025, 1, 1))]


def test_a_second_run_counts_the_periods_it_finds_invoiced(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1))})
    first = invoices.run(db, spec, D(2025, 4, 1))
    # Jan, Feb and Mar have ended by Apr 1; April is still running.
    assert periods(first.created) == [("a", D(2025, m, 1)) for m in (1, 2, 3)]
    assert (first.as_of, first.already_invoiced) == (D(2025, 4, 1), 0)
    again = invoices.run(db, spec, D(2025, 4, 1))
    assert (again.as_of, again.created, again.already_invoiced) == (D(2025, 4, 1), [], 3)
    later = invoices.run(db, spec, D(2025, 5, 1))
    assert periods(later.created) == [("a", D(2025, 4, 1))]
    assert later.already_invoiced == 3


def test_the_buyer_is_named_as_the_file_says_else_as_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    contact = {"name": "Acme Corp", "email": "billing@acme.test"}
    subscriptions.sync(db, make_spec({"a": tenant("starter", D(2025, 1, 1), **contact)}), None)
    # Renamed in the file only: the plan is the same, so sync records nothing.
    renamed = {"name": "Acme Inc", "email": "accounts@acme.test"}
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1), **renamed)})
    (jan,) = invoices.run(db, spec, D(2025, 2, 1)).created
    assert (jan.tenant_name, jan.tenant_email) == ("Acme Inc", "accounts@acme.test")
    # Without the file the run names the tenant as it was recorded.
    (feb,) = invoices.run(db, None, D(2025, 3, 1)).created
    assert (feb.tenant_name, feb.tenant_email) == ("Acme Corp", "billing@acme.test")
    stored = invoices.get_invoice(db, jan.invoice_number)
    assert (stored.tenant_name, stored.tenant_email) == ("Acme Inc", "accounts@acme.test")


def test_an_invoice_numbers_its_lines_from_one(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1))})
    (jan,) = invoices.run(db, spec, D(2025, 2, 1)).created
    expected = [(1, "base"), (2, "storage"), (3, "bandwidth")]
    assert [(ln.line_no, ln.kind) for ln in jan.lines] == expected
    stored = invoices.get_invoice(db, jan.invoice_number)
    assert [(ln.line_no, ln.kind) for ln in stored.lines] == expected


def test_an_invoice_is_stamped_in_naive_utc_to_the_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1))})
    # A local zone 9 hours off UTC, so local time cannot pass for UTC.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        (jan,) = invoices.run(db, spec, D(2025, 2, 1)).created
        after = datetime.now(UTC).replace(tzinfo=None)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert jan.created_at.tzinfo is None and jan.created_at.microsecond == 0
    assert before <= jan.created_at <= after
    assert invoices.get_invoice(db, jan.invoice_number).created_at == jan.created_at


def test_sync_returns_the_day_it_synced_as_of(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1))})
    result = subscriptions.sync(db, spec, D(2025, 3, 5))
    assert result.as_of == D(2025, 3, 5)
    assert [(c.tenant, c.event, c.effective) for c in result.changes] == [
        ("a", "start", D(2025, 1, 1))
    ]


def test_a_run_the_store_refuses_writes_nothing_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1)), "b": tenant("pro", D(2025, 1, 1))})
    invoices.run(db, spec, D(2025, 2, 1), tenant="a")
    # The counter put back by hand: b's invoice takes number 1 again, which the store's
    # UNIQUE seq refuses, the one way to reach that refusal in a single process.
    with store.connect(db) as conn:
        conn.execute("UPDATE billing_invoice_sequence SET last_value = 0")
    with pytest.raises(BillingError) as info:
        invoices.run(db, spec, D(2025, 2, 1), tenant="b")
    assert info.value.message.startswith("invoice run refused by the store, nothing written: ")
    assert info.value.hint == "another run invoiced the same period; run again to see its invoices"
    assert invoices.list_invoices(db, "b") == []
    assert periods(invoices.list_invoices(db)) == [("a", D(2025, 1, 1))]
