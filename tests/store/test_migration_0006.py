"""Migration 0006 on a store made before it: invoices already issued become sealed documents
as they were (no tax, due on their issue day), and `store check` finds nothing wrong."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from hosting import store
from hosting.billing import invoices
from hosting.store.check import check

NUMBER = "INV-20260203-000001"


def test_issued_invoices_become_sealed_documents(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, "
        "applied_at TIMESTAMP DEFAULT (now()::TIMESTAMP))"
    )
    for name, sql in store.migrations():
        if name >= "0006":
            break
        conn.execute(sql)
        conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", [name])
    conn.execute(
        "INSERT INTO billing_invoices VALUES ($1, 1, 'acme', 'Acme', 'a@acme.test', 'sub-1', "
        "'starter', 'monthly', 12.25, 'USD', 'paid', '2026-01-03', '2026-02-03', 9.99, 0, 2.26, "
        "0, 20, 145.1, 100, '2026-02-05 10:00', '2026-02-03 01:00', '2026-02-05 10:00')",
        [NUMBER],
    )
    conn.execute(
        "INSERT INTO invoice_lines VALUES ($1, 1, 'base', 'Starter', 1, 9.99, 9.99, 'starter'), "
        "($1, 2, 'bandwidth', 'Bandwidth', 45.1, 0.05, 2.26, 'starter')",
        [NUMBER],
    )
    conn.execute("UPDATE billing_invoice_sequence SET last_value = 1")
    conn.close()

    inv = invoices.get_invoice(path, NUMBER)  # opening migrates
    doc = inv.document
    assert doc is not None
    assert (doc.net, doc.tax, doc.total) == (Decimal("12.25"), Decimal("0.00"), Decimal("12.25"))
    assert (str(doc.issue_date), str(doc.due_date)) == ("2026-02-03", "2026-02-03")
    assert (doc.buyer.name, doc.buyer.email) == ("Acme", "a@acme.test")
    assert [ln.amount for ln in inv.lines] == [Decimal("9.99"), Decimal("2.26")]
    assert inv.status == "paid" and inv.amount_due == Decimal("0.00")
    with store.connect(path) as conn, pytest.raises(duckdb.ConstraintException):
        conn.execute("UPDATE invoice_lines SET amount = 0 WHERE line_no = 2")
    report = check(path)
    assert report.ok, report.findings
