"""An issued invoice is immutable in the store itself, not by convention (issue 15).

Every statement below is one a careless or malicious caller could run against the DuckDB
file directly; each must fail with a constraint error and leave the invoice as issued.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from hosting import store
from hosting.billing import credit_notes, invoices
from tests.billing.helpers import make_spec, tenant

NUMBER = "INV-20260203-000001"
BILLING = {
    "legal_name": "Demo Hosting Ltd",
    "address": "1 Main Street\nSpringfield",
    "tax_id": "GB123456789",
    "payment_terms_days": 30,
    "footer": "Thank you.",
}


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("immutable") / "store.duckdb"
    spec = make_spec(
        {
            "acme": tenant(
                "starter",
                date(2026, 1, 3),
                tax_rate=19,
                billing_address="2 Side Street",
                tax_id="DE811907980",
            )
        },
        platform_extra={"billing": BILLING},
    )
    invoices.run(path, spec, date(2026, 2, 3))
    credit_notes.issue_credit_note(
        path, NUMBER, Decimal("1.00"), "goodwill", today=date(2026, 2, 4)
    )
    return path


def test_the_document_as_issued(issued: Path) -> None:
    inv = invoices.get_invoice(issued, NUMBER)
    doc = inv.document
    assert doc is not None
    # Issued on the run's as-of day; due 30 days later: Feb 3 + 25 days = Feb 28, + 5 = Mar 5.
    assert (doc.issue_date, doc.due_date) == (date(2026, 2, 3), date(2026, 3, 5))
    assert (doc.seller.name, doc.seller.tax_id) == ("Demo Hosting Ltd", "GB123456789")
    assert (doc.buyer.address, doc.buyer.tax_id) == ("2 Side Street", "DE811907980")
    # 9.99 × 19 % = 1.8981 → 1.90; 9.99 + 1.90 = 11.89; less the 1.00 credit note: 10.89 due.
    assert (doc.net, doc.tax, doc.total) == (Decimal("9.99"), Decimal("1.90"), Decimal("11.89"))
    assert inv.amount == Decimal("11.89")
    assert inv.amount_due == Decimal("10.89")


# Each keeps the table's own CHECK (total = net + tax, due = issue + terms) satisfied, so
# only the seal can refuse it (test_the_seal_is_what_refuses runs them on an unsealed row).
ATTEMPTS = [
    "UPDATE invoice_documents SET net = 0.00, tax = 0.00, total = 0.00 "
    "WHERE invoice_number = '{n}'",
    "UPDATE invoice_documents SET net = 1.00, tax = 0.00, total = 1.00 "
    "WHERE invoice_number = '{n}'",
    "UPDATE invoice_documents SET due_date = due_date + 60, terms_days = terms_days + 60 "
    "WHERE invoice_number = '{n}'",
    "UPDATE invoice_documents SET buyer_name = 'Someone Else' WHERE invoice_number = '{n}'",
    "UPDATE invoice_documents SET seller_tax_id = '' WHERE invoice_number = '{n}'",
    "DELETE FROM invoice_documents WHERE invoice_number = '{n}'",
    "UPDATE invoice_lines SET amount = 0.01 WHERE invoice_number = '{n}'",
    "UPDATE invoice_lines SET description = 'free' WHERE invoice_number = '{n}'",
    "DELETE FROM invoice_lines WHERE invoice_number = '{n}'",
    "UPDATE credit_notes SET amount = 11.89, net = 9.99, tax = 1.90 WHERE invoice_number = '{n}'",
    "DELETE FROM credit_notes WHERE invoice_number = '{n}'",
]


@pytest.mark.parametrize("statement", ATTEMPTS)
def test_issued_invoice_cannot_be_changed(issued: Path, statement: str) -> None:
    before = invoices.get_invoice(issued, NUMBER)
    with store.connect(issued) as conn, pytest.raises(duckdb.ConstraintException):
        conn.execute(statement.format(n=NUMBER))
    assert invoices.get_invoice(issued, NUMBER) == before


def test_the_seal_is_what_refuses(tmp_path: Path) -> None:
    """The same statements work on a row nobody sealed: the refusal above is the seal's,
    not a typo in a statement that would fail anyway."""
    path = tmp_path / "store.duckdb"
    other = "INV-20990101-000099"
    with store.connect(path) as conn:
        conn.execute(
            "INSERT INTO invoice_documents VALUES ($1, DATE '2099-01-01', DATE '2099-01-01', 0, "
            "'S', '', '', '', '', 'B', '', '', '', 'USD', 9.99, 0, 0, 9.99, now()::TIMESTAMP)",
            [other],
        )
        conn.execute(
            "INSERT INTO invoice_lines VALUES ($1, 1, 'base', 'x', 1, 9.99, 9.99, 'starter')",
            [other],
        )
        for statement in ATTEMPTS:
            if "credit_notes" not in statement:
                conn.execute(statement.format(n=other))
        assert conn.execute(
            "SELECT count(*) FROM invoice_documents WHERE invoice_number = $1", [other]
        ).fetchone() == (0,)
