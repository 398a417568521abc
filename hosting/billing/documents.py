"""An invoice as a legal document (issue 15): who issues it to whom, when it is due, its tax.

The document is written once, in the transaction that numbers the invoice, and sealed: the
store refuses any later UPDATE or DELETE of it or of its lines (migration 0006 says how).
Everything that may change afterwards (payment status, credit notes, deliveries) lives in
other tables and refers to it.

Tax: `tax_rate` percent of the invoice's net (the sum of its rounded lines), rounded half up
to the cent once, shown as its own line; total = net + tax. The rate is the tenant's
`tax_rate` when the invoice is issued; a later change in the file changes no issued invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from hosting import store
from hosting.billing.money import ZERO, cents, div, mul
from hosting.spec.models import Spec

DEFAULT_TERMS_DAYS = 14  # without `platform.billing`: the model's default payment terms


@dataclass(frozen=True)
class Party:
    """Seller or buyer as printed on the document; empty strings where none was given."""

    name: str
    address: str = ""
    tax_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class Document:
    invoice_number: str
    issue_date: date
    due_date: date
    terms_days: int
    seller: Party
    buyer: Party
    footer: str
    currency: str
    net: Decimal
    tax_rate: Decimal  # percent
    tax: Decimal
    total: Decimal
    issued_at: datetime


def tax_of(net: Decimal, rate_percent: Decimal) -> Decimal:
    """net × rate ÷ 100, rounded half up to the cent (away from zero for a negative net)."""
    return cents(div(mul(net, rate_percent), 100))


def seller_of(spec: Spec | None) -> tuple[Party, str, int]:
    """The seller, the footer and the payment terms in days, from `platform.billing`."""
    if spec is None:
        return Party(""), "", DEFAULT_TERMS_DAYS
    smtp = spec.platform.smtp
    email = smtp.from_ if smtp is not None else ""
    b = spec.platform.billing
    if b is None:
        return Party(spec.platform.name, email=email), "", DEFAULT_TERMS_DAYS
    return (
        Party(b.legal_name, b.address, b.tax_id or "", email),
        b.footer or "",
        b.payment_terms_days,
    )


def document(
    spec: Spec | None,
    number: str,
    tenant_id: str,
    contact: tuple[str, str],
    currency: str,
    net: Decimal,
    issue_date: date,
    issued_at: datetime,
) -> Document:
    """The document of a newly numbered invoice (pure: no store)."""
    seller, footer, terms = seller_of(spec)
    tenant = spec.tenants.get(tenant_id) if spec is not None else None
    rate = (tenant.tax_rate if tenant is not None else None) or Decimal(0)
    buyer = Party(
        contact[0],
        (tenant.billing_address or "") if tenant is not None else "",
        (tenant.tax_id or "") if tenant is not None else "",
        contact[1],
    )
    tax = tax_of(net, rate) if rate else ZERO
    return Document(
        invoice_number=number,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=terms),
        terms_days=terms,
        seller=seller,
        buyer=buyer,
        footer=footer,
        currency=currency,
        net=net,
        tax_rate=rate,
        tax=tax,
        total=net + tax,
        issued_at=issued_at,
    )


_COLUMNS = (
    "invoice_number, issue_date, due_date, terms_days, seller_name, seller_address, "
    "seller_tax_id, seller_email, footer, buyer_name, buyer_email, buyer_address, "
    "buyer_tax_id, currency, net, tax_rate, tax, total, issued_at"
)
_TYPES = (
    *("VARCHAR", "DATE", "DATE", "INTEGER", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"),
    *("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "DECIMAL(18,2)"),
    *("DECIMAL(9,4)", "DECIMAL(18,2)", "DECIMAL(18,2)", "TIMESTAMP"),
)


def _row(d: Document) -> tuple[Any, ...]:
    s, b = d.seller, d.buyer
    return (
        *(d.invoice_number, d.issue_date, d.due_date, d.terms_days),
        *(s.name, s.address, s.tax_id, s.email, d.footer),
        *(b.name, b.email, b.address, b.tax_id),
        *(d.currency, d.net, d.tax_rate, d.tax, d.total, d.issued_at),
    )


def unnest_insert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    types: list[str] | tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> None:
    """One INSERT for all rows: each column is passed as a list and unnested side by side."""
    if not rows:
        return
    cols = [list(c) for c in zip(*rows, strict=True)]
    select = ", ".join(f"unnest(${i + 1}::{t}[])" for i, t in enumerate(types))
    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {select}", cols)


def insert_and_seal(
    conn: duckdb.DuckDBPyConnection, docs: list[Document], lines: list[tuple[str, int]]
) -> None:
    """Write the documents and seal them and their lines (`lines`: (number, line_no) already
    inserted). Call inside the transaction that inserts the invoices."""
    unnest_insert(conn, "invoice_documents", _COLUMNS, _TYPES, [_row(d) for d in docs])
    numbers = [(d.invoice_number,) for d in docs]
    unnest_insert(conn, "invoice_seals", "invoice_number", ("VARCHAR",), numbers)
    unnest_insert(
        conn, "invoice_line_seals", "invoice_number, line_no", ("VARCHAR", "INTEGER"), lines
    )


def read(conn: duckdb.DuckDBPyConnection, numbers: list[str]) -> dict[str, Document]:
    if not numbers:
        return {}
    out: dict[str, Document] = {}
    for r in store.rows_as_dicts(
        conn.execute(
            f"SELECT {_COLUMNS} FROM invoice_documents WHERE list_contains($1, invoice_number)",
            [numbers],
        )
    ):
        seller = Party(
            r.pop("seller_name"),
            r.pop("seller_address"),
            r.pop("seller_tax_id"),
            r.pop("seller_email"),
        )
        buyer = Party(
            r.pop("buyer_name"), r.pop("buyer_address"), r.pop("buyer_tax_id"), r.pop("buyer_email")
        )
        out[r["invoice_number"]] = Document(**r, seller=seller, buyer=buyer)
    return out
