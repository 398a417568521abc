"""`hosting store check` on credit notes and invoice documents (issue 15): credit note
numbers gapless like invoice numbers; an invoice's amount as its sealed document says."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hosting.billing import credit_notes
from tests.store.helpers import hosting, ok, sql, write_spec


def test_credit_note_gap_and_a_changed_amount_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write_spec(root)
    ok(hosting(root, "invoice", "run", "--as-of", "2026-03-04"))
    store = root / ".hosting" / "hosting.duckdb"
    report = ok(hosting(root, "store", "check"))
    assert "credit notes     no credit notes yet" in report, report
    for amount in ("1.00", "2.00", "3.00"):
        credit_notes.issue_credit_note(store, "INV-20260203-000001", Decimal(amount), "test")
    report = ok(hosting(root, "store", "check"))
    assert "1–3 gapless (3 credit notes, counter at 3)" in report, report
    assert "documents        3 issued, sealed, amounts as issued" in report, report

    # The second credit note removed, which takes removing its seal first: a gap.
    sql(store, "DELETE FROM credit_note_seals WHERE credit_note_number LIKE '%-000002'")
    sql(store, "DELETE FROM credit_notes WHERE seq = 2")
    # billing_invoices keeps the payment state and can change: its amount is checked.
    sql(store, "UPDATE billing_invoices SET amount = 0.99 WHERE seq = 2")
    broken = hosting(root, "store", "check")
    assert broken.returncode == 1
    assert "no credit note numbered 2 (the counter is at 3)" in broken.stdout, broken.stdout
    number = "INV-20260220-000002"
    assert f"amount differs from the issued total: {number}" in broken.stdout, broken.stdout
    assert "store check failed: credit notes, documents" in broken.stderr
