"""The invoice renderer against a golden file: a hand-built invoice (yearly charge, credit,
overage, a customer name with markup) must render byte for byte as reviewed. Regenerate
after an intended change with UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from hosting.reports.models import InvoiceLine, InvoiceView, Party
from hosting.reports.render import render_invoice
from tests.conftest import golden
from tests.reports import browser

GOLDEN = Path(__file__).resolve().parent / "golden" / "invoice.html"

INVOICE = InvoiceView(
    number="INV-20261115-000042",
    seller=Party("demo", domain="apps.example.test"),
    customer=Party('Globex "<b>Intl</b>"', "ap@globex.test", reference="globex"),
    issue_date=date(2026, 11, 15),
    period_start=date(2026, 10, 15),
    period_end=date(2026, 11, 15),
    status="failed",
    currency="USD",
    lines=(
        InvoiceLine(
            "base", "Pro plan (yearly), 2026-10-20 to 2027-10-20", Decimal(1), "year",
            Decimal("299.90"), Decimal("299.90"),
        ),
        InvoiceLine(
            "credit", "Credit: 86 unused of 365 days of Starter (yearly)",
            Decimal("-0.235616438356"), "year", Decimal("99.90"), Decimal("-23.54"),
        ),
        InvoiceLine(
            "storage", "Storage: 53.25 GB average, 50 GB included, 3.25 GB over",
            Decimal("3.25"), "GB", Decimal("0.10"), Decimal("0.33"),
        ),
        InvoiceLine(
            "bandwidth", "Bandwidth: 1,234.50 GB used, 500 GB included, 734.50 GB over",
            Decimal("734.5"), "GB", Decimal("0.05"), Decimal("36.73"),
        ),
    ),
    subtotal=Decimal("313.42"),
    total=Decimal("313.42"),
    plan="pro (yearly)",
)  # fmt: skip


def test_invoice_matches_golden_file() -> None:
    page = render_invoice(INVOICE)
    assert page == golden(GOLDEN, page)


def test_golden_numbers_by_hand() -> None:
    page = GOLDEN.read_text()
    # 299.90 − 23.54 + 0.33 + 36.73 = 313.42; thousands separators; negative credit.
    for cell in (">299.90<", ">-23.54<", ">0.33<", ">36.73<", 'id="total">USD 313.42<'):
        assert cell in page
    assert "-0.2356 year" in page and "734.5 GB" in page
    assert "Globex &#34;&lt;b&gt;Intl&lt;/b&gt;&#34;" in page
    assert "2026-10-15 – 2026-11-14" in page


@pytest.mark.chromium
def test_longer_invoice_still_prints_on_one_page(chromium_binary: str, tmp_path: Path) -> None:
    many = INVOICE.lines * 3  # twelve lines: a plan change, credits and overages
    page = tmp_path / "long.html"
    page.write_text(render_invoice(INVOICE.__class__(**{**INVOICE.__dict__, "lines": many})))
    run = browser.run(chromium_binary, page, tmp_path / "run", pdf=True)
    assert run.pdf is not None and run.console == [] and run.requests == []
    assert browser.pdf_pages(run.pdf) == 1
