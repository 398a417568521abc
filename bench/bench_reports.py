"""Render 10,000 HTML invoices (target ≤ 10 s) and compare with a baseline measured in the
same run: the same invoices written by hand-rolled f-strings with html.escape, which is
roughly the least any escaping HTML renderer can cost.

Run: python bench/bench_reports.py [COUNT]
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from hosting.billing.invoices import Invoice, InvoiceLine
from hosting.reports import render
from hosting.reports.billing_adapter import from_invoice
from hosting.spec import loads

SPEC = loads(
    "version: 1\nplatform: {name: bench, domain: apps.bench.test, public_ipv4: 127.0.0.1}\n"
)
TARGET_S = 10.0


def invoices(count: int) -> list[Invoice]:
    out = []
    start = datetime(2026, 1, 3)
    for i in range(count):
        storage = Decimal(i % 17) / 4
        bandwidth = Decimal(i % 23) / 3
        lines = (
            InvoiceLine(
                1,
                "base",
                "Starter plan (monthly)",
                Decimal(1),
                Decimal("9.99"),
                Decimal("9.99"),
                "starter",
            ),
            InvoiceLine(
                2,
                "storage",
                f"Storage: {storage} GB over",
                storage,
                Decimal("0.10"),
                (storage * Decimal("0.10")).quantize(Decimal("0.01")),
                None,
            ),
            InvoiceLine(
                3,
                "bandwidth",
                f"Bandwidth: {bandwidth:.2f} GB over",
                bandwidth,
                Decimal("0.05"),
                (bandwidth * Decimal("0.05")).quantize(Decimal("0.01")),
                None,
            ),
        )
        amount = sum((ln.amount for ln in lines), Decimal("0.00"))
        out.append(
            Invoice(
                invoice_number=f"INV-20260203-{i + 1:06d}",
                tenant=f"t{i}",
                tenant_name=f"Tenant <{i}> & Co",
                tenant_email=f"billing@t{i}.test",
                subscription_id="s",
                plan="starter",
                billing_cycle="monthly",
                amount=amount,
                currency="USD",
                status="pending",
                period_start=start,
                period_end=start + timedelta(days=31),
                base_cost=Decimal("9.99"),
                storage_cost=lines[1].amount,
                bandwidth_cost=lines[2].amount,
                storage_used_gb=storage,
                storage_included_gb=10,
                bandwidth_used_gb=bandwidth,
                bandwidth_included_gb=100,
                paid_at=None,
                created_at=start,
                updated_at=start,
                lines=lines,
            )
        )
    return out


def baseline(inv: Invoice) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(ln.description)}</td><td>{ln.quantity}</td><td>{ln.unit_price}</td>"
        f"<td>{ln.amount}</td></tr>"
        for ln in inv.lines
    )
    return (
        f"<!DOCTYPE html><html><head><title>{e(inv.invoice_number)}</title></head><body>"
        f"<h1>Invoice {e(inv.invoice_number)}</h1><p>{e(inv.tenant_name)} "
        f"{e(inv.tenant_email)}</p><p>{inv.period_start:%Y-%m-%d} – {inv.period_end:%Y-%m-%d}"
        f" {e(inv.status)}</p><table>{rows}</table><p>Total {inv.currency} {inv.amount}</p>"
        "</body></html>"
    )


def timed(fn: Callable[[Invoice], str], items: list[Invoice]) -> tuple[float, int]:
    t0 = time.perf_counter()
    size = 0
    for inv in items:
        size += len(fn(inv))
    return time.perf_counter() - t0, size


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    items = invoices(count)
    render.render_invoice(from_invoice(SPEC, items[0]))  # compile the template once
    base_s, base_bytes = timed(baseline, items)
    ours_s, ours_bytes = timed(lambda inv: render.render_invoice(from_invoice(SPEC, inv)), items)
    print(f"{count:,} invoices")
    print(
        f"baseline  f-strings + html.escape : {base_s:7.3f} s  1.0×  "
        f"({base_bytes / count:,.0f} B each)"
    )
    print(
        f"reports   adapter + Jinja2        : {ours_s:7.3f} s  {ours_s / base_s:.1f}×  "
        f"({ours_bytes / count:,.0f} B each, {1000 * ours_s / count:.3f} ms per invoice)"
    )
    verdict = "✔" if ours_s <= TARGET_S * count / 10_000 else "✘"
    print(f"target ≤ {TARGET_S * count / 10_000:.1f} s for {count:,}: {verdict}")


if __name__ == "__main__":
    main()
