"""Every field of an invoice's document as stored and read back, with and without
`platform.billing` (issue 15), and the tax rounding at its half-cent boundary.

Expected values are written out from the file given, not taken from the code under test.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hosting import store
from hosting.billing import documents, invoices
from tests.billing.helpers import make_spec, tenant

D = Decimal
NUMBER = "INV-20260203-000001"
START, RUN = date(2026, 1, 3), date(2026, 2, 3)
SMTP = {"host": "127.0.0.1", "port": 2525, "from": "Billing <billing@demo.test>"}
BILLING = {
    "legal_name": "Demo Hosting Ltd",
    "address": "1 Main Street\nSpringfield",
    "tax_id": "GB123456789",
    "payment_terms_days": 30,
    "footer": "Thank you.",
}


def issued(path: Path, platform_extra: dict[str, Any], **extra: Any) -> documents.Document:
    spec = make_spec({"acme": tenant("starter", START, **extra)}, platform_extra=platform_extra)
    invoices.run(path, spec, RUN)
    doc = invoices.get_invoice(path, NUMBER).document
    assert doc is not None
    return doc


def test_every_field_with_a_seller_read_back(tmp_path: Path) -> None:
    # starter, full month: net 9.99; 7.5 %: 9.99 × 7.5 ÷ 100 = 0.74925 → 0.75; total 10.74.
    # Terms 30 days: 2026-02-03 + 30 = 2026-03-05.
    doc = issued(
        tmp_path / "s.duckdb",
        {"billing": BILLING, "smtp": SMTP},
        tax_rate=7.5,
        billing_address="2 Side Street",
        tax_id="DE811907980",
    )
    assert doc.seller == documents.Party(
        "Demo Hosting Ltd",
        "1 Main Street\nSpringfield",
        "GB123456789",
        "Billing <billing@demo.test>",
    )
    # The buyer's name and email are the tenant's (helpers.tenant gives them).
    assert doc.buyer == documents.Party(
        "Tenant", "2 Side Street", "DE811907980", "billing@tenant.test"
    )
    assert (doc.invoice_number, doc.issue_date, doc.due_date, doc.terms_days) == (
        NUMBER,
        date(2026, 2, 3),
        date(2026, 3, 5),
        30,
    )
    assert (doc.footer, doc.currency) == ("Thank you.", "USD")
    assert (doc.net, doc.tax_rate, doc.tax, doc.total) == (
        D("9.99"),
        D("7.5"),
        D("0.75"),
        D("10.74"),
    )
    assert isinstance(doc.issued_at, datetime)


def test_without_platform_billing_the_platform_sells_on_14_days(tmp_path: Path) -> None:
    # No `platform.billing`: the seller is the platform's name ("demo", helpers.PLATFORM) with
    # the SMTP sender as its email, no address, tax id or footer; terms 14 days: due
    # 2026-02-03 + 14 = 2026-02-17. No tax_rate: rate 0, tax 0.00, total = net = 9.99.
    doc = issued(tmp_path / "s.duckdb", {"smtp": SMTP})
    assert doc.seller == documents.Party("demo", "", "", "Billing <billing@demo.test>")
    assert doc.buyer == documents.Party("Tenant", "", "", "billing@tenant.test")
    assert (doc.footer, doc.terms_days, doc.due_date) == ("", 14, date(2026, 2, 17))
    assert (doc.net, doc.tax_rate, doc.tax, doc.total) == (D("9.99"), D("0"), D("0.00"), D("9.99"))


def test_without_smtp_the_seller_has_no_email(tmp_path: Path) -> None:
    doc = issued(tmp_path / "s.duckdb", {})
    assert doc.seller == documents.Party("demo", "", "", "")


def test_a_billing_section_without_tax_id_or_footer(tmp_path: Path) -> None:
    bare = {"legal_name": "Demo Hosting Ltd", "address": "1 Main Street"}
    doc = issued(tmp_path / "s.duckdb", {"billing": bare})
    assert doc.seller == documents.Party("Demo Hosting Ltd", "1 Main Street", "", "")
    assert (doc.footer, doc.terms_days, doc.due_date) == ("", 14, date(2026, 2, 17))


def test_a_document_without_a_file() -> None:
    # No spec at all: an unnamed seller, terms 14 days (2026-02-03 + 14 = 2026-02-17), the
    # buyer only as the contact given, no tax.
    at = datetime(2026, 2, 3, 12, 0)
    doc = documents.document(
        None, NUMBER, "acme", ("Acme", "a@acme.test"), "EUR", D("5.00"), RUN, at
    )
    assert doc == documents.Document(
        NUMBER,
        RUN,
        date(2026, 2, 17),
        14,
        documents.Party(""),
        documents.Party("Acme", "", "", "a@acme.test"),
        "",
        "EUR",
        D("5.00"),
        D("0"),
        D("0"),
        D("5.00"),
        at,
    )


def test_tax_rounds_half_up_at_the_half_cent() -> None:
    # 10 % of 0.05 = 0.005 exactly → 0.01 (half up); of 0.04 = 0.004 → 0.00; of 0.06 = 0.006
    # → 0.01. A negative net rounds away from zero: −0.005 → −0.01.
    assert documents.tax_of(D("0.05"), D("10")) == D("0.01")
    assert documents.tax_of(D("0.04"), D("10")) == D("0.00")
    assert documents.tax_of(D("0.06"), D("10")) == D("0.01")
    assert documents.tax_of(D("-0.05"), D("10")) == D("-0.01")


def test_an_invoice_without_credit_notes_is_sealed_by_its_own_seal(tmp_path: Path) -> None:
    # A credit note's reference also blocks changes to its invoice's document, so this invoice
    # has none: only the invoice's seal (and its lines' seals) can refuse the changes.
    path = tmp_path / "s.duckdb"
    issued(path, {})
    with store.connect(path) as conn:
        assert conn.execute("SELECT invoice_number FROM invoice_seals").fetchall() == [(NUMBER,)]
        with pytest.raises(duckdb.ConstraintException):
            conn.execute("UPDATE invoice_documents SET footer = 'changed'")
        with pytest.raises(duckdb.ConstraintException):
            conn.execute("UPDATE invoice_lines SET description = 'changed'")
