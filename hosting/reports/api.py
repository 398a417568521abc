"""The reports as the CLI (and any Python caller) asks for them: spec + store in, HTML out."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from hosting.reports import billing_adapter, render, sources
from hosting.spec.limits import tenant_or_error
from hosting.spec.models import Spec
from hosting.store import connect


def invoice_html(spec: Spec, store_path: Path, number: str) -> str:
    view = billing_adapter.invoice_view(spec, store_path, number)
    return render.render_invoice(view)


def usage_html(
    spec: Spec, store_path: Path, tenant_id: str, as_of: date, now: datetime | None = None
) -> str:
    tenant = tenant_or_error(spec, tenant_id)
    projected, note = billing_adapter.projection(spec, store_path, tenant_id, as_of)
    with connect(store_path, read_only=True) as conn:
        report = sources.usage_report(
            spec, conn, tenant_id, tenant, as_of, now or sources.utc_now(), projected, note
        )
    return render.render_usage(report)


def platform_html(spec: Spec, store_path: Path, as_of: date, now: datetime | None = None) -> str:
    invoices, notes = billing_adapter.invoices_with_plans(spec, store_path)
    with connect(store_path, read_only=True) as conn:
        report = sources.platform_report(
            spec, conn, as_of, now or sources.utc_now(), invoices, notes
        )
    return render.render_platform(report)
