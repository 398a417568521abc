"""Billing's invoices and projections as the reports' view models.

Billing is built alongside the reports; until `hosting.billing` exists the invoice report
says so plainly and the other reports render without their billing sections.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hosting.errors import BillingError
from hosting.reports.models import InvoiceView
from hosting.spec.models import Spec

NO_BILLING = "billing is not available in this build"


def invoice_view(spec: Spec, store_path: Path, number: str) -> InvoiceView:
    raise BillingError(f"cannot render invoice {number}: {NO_BILLING}")


def projection(
    spec: Spec, store_path: Path, tenant_id: str, as_of: date
) -> tuple[InvoiceView | None, str]:
    return None, f"No projection: {NO_BILLING}."


def invoices_with_plans(
    spec: Spec, store_path: Path
) -> tuple[list[tuple[InvoiceView, str]], list[str]]:
    return [], [f"Invoiced amounts are not shown: {NO_BILLING}."]
