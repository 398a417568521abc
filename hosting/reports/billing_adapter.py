"""Billing's invoices and projections as the reports' view models.

The reports render only their own view models (models.py); this module is the one place
that knows billing's types, so a change there is a change here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from hosting.billing import current, invoices
from hosting.errors import HostingError
from hosting.reports.models import CreditNoteView, InvoiceLine, InvoiceView, Party
from hosting.spec.models import Spec


class _LineLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def unit_price(self) -> Decimal: ...
    @property
    def amount(self) -> Decimal: ...


def unit_of(kind: str, description: str) -> str:
    """What a line's quantity counts: a share of a month or year of the plan, or GB."""
    if kind in ("storage", "bandwidth"):
        return "GB"
    if kind == "credit" or "(yearly)" in description:
        return "year"
    return "month"


def lines_view(lines: Sequence[_LineLike]) -> tuple[InvoiceLine, ...]:
    return tuple(
        InvoiceLine(
            kind=ln.kind,
            description=ln.description,
            quantity=ln.quantity,
            unit=unit_of(ln.kind, ln.description),
            unit_price=ln.unit_price,
            amount=ln.amount,
        )
        for ln in lines
    )


def seller(spec: Spec) -> Party:
    return Party(name=spec.platform.name, domain=spec.platform.domain)


def from_invoice(spec: Spec, inv: invoices.Invoice) -> InvoiceView:
    """The invoice as issued: seller and buyer from its sealed document, not today's file."""
    lines = lines_view(inv.lines)
    doc = inv.document
    seller_party, customer = (
        seller(spec),
        Party(inv.tenant_name, inv.tenant_email, reference=inv.tenant),
    )
    if doc is not None:
        s, b = doc.seller, doc.buyer
        seller_party = Party(
            s.name or spec.platform.name, s.email or None, spec.platform.domain,
            address=s.address, tax_id=s.tax_id,
        )  # fmt: skip
        customer = Party(
            b.name, b.email or None, reference=inv.tenant, address=b.address, tax_id=b.tax_id
        )
    return InvoiceView(
        number=inv.invoice_number,
        seller=seller_party,
        customer=customer,
        issue_date=doc.issue_date if doc else inv.created_at.date(),
        period_start=inv.period_start.date(),
        period_end=inv.period_end.date(),
        status=inv.status,
        currency=inv.currency,
        lines=lines,
        subtotal=sum((ln.amount for ln in lines), Decimal("0.00")),
        total=inv.amount,
        plan=f"{inv.plan} ({inv.billing_cycle})",
        due_date=doc.due_date if doc else None,
        tax_rate=doc.tax_rate if doc and doc.tax_rate else None,
        tax=doc.tax if doc and doc.tax_rate else None,
        credit_notes=tuple(
            CreditNoteView(n.credit_note_number, n.issue_date, n.reason, n.amount)
            for n in inv.credit_notes
        ),
        amount_due=inv.amount_due if doc else None,
        footer=doc.footer if doc else "",
    )


def invoice_view(spec: Spec, store_path: Path, number: str) -> InvoiceView:
    return from_invoice(spec, invoices.get_invoice(store_path, number))


def projection(
    spec: Spec, store_path: Path, tenant_id: str, as_of: date
) -> tuple[InvoiceView | None, str]:
    """The running period's projected invoice, or None and the reason in words."""
    try:
        use = current.usage(store_path, spec, tenant_id, as_of)
    except HostingError as exc:
        return None, f"No projection: {exc.message}."
    tenant = spec.tenants[tenant_id]
    lines = lines_view(use.projected_lines)
    view = InvoiceView(
        number="projected",
        seller=seller(spec),
        customer=Party(tenant.name, tenant.email, reference=tenant_id),
        issue_date=as_of,
        period_start=use.period_start,
        period_end=use.period_end,
        status="projected",
        currency=use.currency,
        lines=lines,
        subtotal=use.projected_cost - use.projected_tax,
        total=use.projected_cost,
        tax_rate=use.tax_rate or None,
        tax=use.projected_tax if use.tax_rate else None,
    )
    note = (
        f"Storage is projected at {use.projected_storage_gb:.2f} GB average "
        f"({use.storage_included_gb} GB included), outbound bandwidth at "
        f"{use.projected_bandwidth_gb:.2f} GB ({use.bandwidth_included_gb} GB included)."
    )
    return view, note


def invoices_with_plans(
    spec: Spec, store_path: Path
) -> tuple[list[tuple[InvoiceView, str]], list[str]]:
    found = invoices.list_invoices(store_path)
    return [(from_invoice(spec, inv), inv.plan) for inv in found], []
