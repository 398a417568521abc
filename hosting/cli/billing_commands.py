"""Billing commands: subscription, usage, invoice run/list/show/mark (SPEC §2, §3)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import click

from hosting.billing import current, invoices, subscriptions
from hosting.billing.invoices import STATUSES, Invoice
from hosting.billing.pricing import Line
from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import as_of_option, echo_json, json_option, table, to_jsonable

pass_app = click.make_pass_decorator(App)

AS_OF = as_of_option()


def _gb(value: Decimal) -> str:
    """GB for people and JSON: six decimals (money keeps two; quantities are not money)."""
    return f"{value.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP)}"


def _qty(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def _line(ln: Line | invoices.InvoiceLine) -> dict[str, Any]:
    return {
        "kind": ln.kind,
        "description": ln.description,
        "plan": ln.plan,
        "quantity": _qty(ln.quantity),
        "unit_price": to_jsonable(ln.unit_price),
        "amount": to_jsonable(ln.amount),
    }


def invoice_json(inv: Invoice) -> dict[str, Any]:
    out: dict[str, Any] = to_jsonable(inv)
    out["storage_used_gb"] = _gb(inv.storage_used_gb)
    out["bandwidth_used_gb"] = _gb(inv.bandwidth_used_gb)
    out["lines"] = [_line(ln) for ln in inv.lines]
    # The document's parts (issue 15) beside the product document's fields.
    out["due_date"] = to_jsonable(inv.due_date)
    out["credited"] = to_jsonable(inv.credited)
    out["amount_due"] = to_jsonable(inv.amount_due)
    if inv.document is not None:
        out["document"]["tax_rate"] = _qty(inv.document.tax_rate)
    return out


def _invoice_rows(found: list[Invoice]) -> list[list[Any]]:
    return [
        [
            i.invoice_number,
            i.tenant,
            f"{i.period_start:%Y-%m-%d}",
            f"{i.period_end:%Y-%m-%d}",
            i.plan,
            i.status,
            f"{i.amount:.2f}",
        ]
        for i in found
    ]


_INVOICE_HEADERS = ["Invoice", "Tenant", "From", "To", "Plan", "Status", "Amount (USD)"]


class _SubscriptionGroup(click.Group):
    """`subscription TENANT` and `subscription sync` side by side: a tenant is `show`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_SubscriptionGroup)
def subscription() -> None:
    """A tenant's subscription, or record the file's changes.

    \b
    hosting subscription TENANT [--as-of DATE] [--json]
        plan, cycle, current period, limits, usage so far, projected cost, history
    hosting subscription sync [--as-of DATE] [--json]
        record new tenants, plan/cycle changes (on DATE) and removed tenants
    """


@subscription.command("show", hidden=True)
@click.argument("tenant")
@AS_OF
@json_option
@pass_app
def subscription_show(app: App, tenant: str, as_of: date | None, as_json: bool) -> None:
    """Plan, cycle, current period, limits, usage so far and projected cost."""
    sub = current.active_subscription(app.store_path, app.spec, tenant, as_of)
    if as_json:
        out: dict[str, Any] = to_jsonable(sub)
        out["usage"] = _usage_json(sub.usage) if sub.usage else None
        out["payments"] = _account(app, tenant)
        echo_json(out)
        return
    click.echo(f"{sub.tenant}: {sub.plan} ({sub.billing_cycle}), {sub.status}")
    recorded = (
        f"subscription {sub.subscription_id}"
        if sub.subscription_id
        else "not recorded yet (`hosting subscription sync` records it)"
    )
    click.echo(f"  {recorded}, started {sub.started}, anchor {sub.anchor}")
    if sub.current_period_start:
        click.echo(f"  current period {sub.current_period_start} to {sub.current_period_end}")
    click.echo("  limits: " + ", ".join(f"{k} {v}" for k, v in sub.limits.items()))
    if sub.usage:
        _echo_usage(sub.usage)
    click.echo("  history:")
    for h in sub.history:
        what = f"{h.plan} ({h.billing_cycle})" if h.plan else ""
        click.echo(f"    {h.effective} {h.event} {what}")
    from hosting.cli.payments_commands import echo_account

    echo_account(_account(app, tenant))


def _account(app: App, tenant: str) -> Any:
    """Suspension and dunning steps (issue 15), from the payments tables."""
    from hosting.payments.suspension import account

    return account(app.store_path, tenant)


@subscription.command("sync")
@AS_OF
@json_option
@pass_app
def subscription_sync(app: App, as_of: date | None, as_json: bool) -> None:
    """Record the file's new tenants, plan/cycle changes (on the date) and removed tenants."""
    result = subscriptions.sync(app.store_path, app.spec, as_of)
    if as_json:
        echo_json(result)
        return
    if not result.changes:
        click.echo(f"subscriptions up to date as of {result.as_of}")
    for c in result.changes:
        if c.event == "start":
            click.echo(f"{c.tenant}: starts {c.effective} on {c.plan} ({c.billing_cycle})")
        elif c.event == "end":
            click.echo(f"{c.tenant}: ends {c.effective}")
        else:
            click.echo(
                f"{c.tenant}: {c.old_plan} ({c.old_billing_cycle}) → {c.plan} "
                f"({c.billing_cycle}) from {c.effective}"
            )


def _usage_json(u: current.CurrentUsage) -> dict[str, Any]:
    out: dict[str, Any] = to_jsonable(u)
    for key in (
        "storage_gb",
        "storage_current_gb",
        "bandwidth_gb",
        "projected_storage_gb",
        "projected_bandwidth_gb",
    ):
        out[key] = _gb(getattr(u, key))
    out["projected_lines"] = [_line(ln) for ln in u.projected_lines]
    out["tax_rate"] = _qty(u.tax_rate)
    return out


def _echo_usage(u: current.CurrentUsage) -> None:
    click.echo(f"  period {u.period_start} to {u.period_end}, as of {u.as_of}")
    click.echo(
        f"  storage: {_gb(u.storage_gb)} GB average so far (now {_gb(u.storage_current_gb)} GB),"
        f" {u.storage_included_gb} GB included"
    )
    click.echo(
        f"  bandwidth: {_gb(u.bandwidth_gb)} GB so far, {u.bandwidth_included_gb} GB included"
    )
    click.echo(
        f"  projected: storage {_gb(u.projected_storage_gb)} GB, bandwidth "
        f"{_gb(u.projected_bandwidth_gb)} GB → {u.projected_cost:.2f} {u.currency} "
        f"(base {u.base_cost:.2f}, storage {u.storage_cost:.2f}, "
        f"bandwidth {u.bandwidth_cost:.2f}"
        + (f", tax {_qty(u.tax_rate)}% {u.projected_tax:.2f})" if u.tax_rate else ")")
    )


@cli.command("usage")
@click.argument("tenant")
@AS_OF
@json_option
@pass_app
def usage_command(app: App, tenant: str, as_of: date | None, as_json: bool) -> None:
    """The current period's usage (storage, bandwidth, included) and projected cost."""
    from hosting.metering.alerts import standing_alerts

    day = as_of
    u = current.usage(app.store_path, app.spec, tenant, day)
    alerts = standing_alerts(app.store_path, app.spec, tenant, day)
    if as_json:
        echo_json({**_usage_json(u), "alerts": alerts})
        return
    click.echo(f"{tenant}:")
    _echo_usage(u)
    for a in alerts:
        click.echo(f"  alert: {a.kind} {a.level}: {a.message}")


@cli.group()
def invoice() -> None:
    """Invoices: run, list, show, mark, credit, send, collect, refund."""


# `invoice credit` and `invoice send` (issue 15) live in their own module; importing it here
# registers them whenever the `invoice` group loads.
from hosting.cli import invoice_commands  # noqa: E402, F401


@invoice.command("run")
@AS_OF
@click.option("--tenant", help="Only this tenant.")
@json_option
@pass_app
def invoice_run(app: App, as_of: date | None, tenant: str | None, as_json: bool) -> None:
    """Invoice every period that ended on or before the date and has none (idempotent)."""
    result = invoices.run(app.store_path, app.spec, as_of, tenant)
    if as_json:
        echo_json(
            {
                "as_of": result.as_of,
                "created": [invoice_json(i) for i in result.created],
                "already_invoiced": result.already_invoiced,
            }
        )
        return
    click.echo(
        f"{len(result.created)} invoice(s) created as of {result.as_of}; "
        f"{result.already_invoiced} ended period(s) already invoiced"
    )
    if result.created:
        click.echo(table(_INVOICE_HEADERS, _invoice_rows(result.created), right=(6,)))


@invoice.command("list")
@click.option("--tenant", help="Only this tenant.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@json_option
@pass_app
def invoice_list(app: App, tenant: str | None, status: str | None, as_json: bool) -> None:
    """Invoices in number order (the product's getInvoices)."""
    found = invoices.list_invoices(app.store_path, tenant, status)
    if as_json:
        echo_json({"invoices": [invoice_json(i) for i in found]})
        return
    if not found:
        click.echo("no invoices")
        return
    click.echo(table(_INVOICE_HEADERS, _invoice_rows(found), right=(6,)))


@invoice.command("show")
@click.argument("number")
@json_option
@pass_app
def invoice_show(app: App, number: str, as_json: bool) -> None:
    """One invoice with its lines."""
    inv = invoices.get_invoice(app.store_path, number)
    if as_json:
        echo_json(invoice_json(inv))
        return
    click.echo(f"{inv.invoice_number} · {inv.status}")
    click.echo(f"{inv.tenant_name} <{inv.tenant_email}> ({inv.tenant})")
    click.echo(
        f"period {inv.period_start:%Y-%m-%d} to {inv.period_end:%Y-%m-%d}, "
        f"plan {inv.plan} ({inv.billing_cycle})"
    )
    rows = [
        [ln.kind, ln.description, _qty(ln.quantity), f"{ln.unit_price:.2f}", f"{ln.amount:.2f}"]
        for ln in inv.lines
    ]
    click.echo(table(["Kind", "Description", "Qty", "Unit", "Amount"], rows, right=(2, 3, 4)))
    doc = inv.document
    if doc is not None and doc.tax_rate:
        click.echo(f"Subtotal: {doc.net:.2f} {inv.currency}")
        click.echo(f"Tax {_qty(doc.tax_rate)}%: {doc.tax:.2f} {inv.currency}")
    click.echo(f"Total: {inv.amount:.2f} {inv.currency}")
    for n in inv.credit_notes:
        click.echo(
            f"Credit note {n.credit_note_number} ({n.issue_date}): -{n.amount:.2f} "
            f"{n.currency}, {n.reason}"
        )
    if doc is not None:
        click.echo(f"issued {doc.issue_date}, due {doc.due_date} ({doc.terms_days} days)")
        click.echo(f"Amount due: {inv.amount_due:.2f} {inv.currency}")
    if inv.paid_at:
        click.echo(f"paid at {to_jsonable(inv.paid_at)}")


@invoice.command("mark")
@click.argument("number")
@click.argument("status", type=click.Choice(["paid", "failed", "refunded"]))
@json_option
@pass_app
def invoice_mark(app: App, number: str, status: str, as_json: bool) -> None:
    """Change an invoice's status: pending→paid|failed, failed→paid, paid→refunded."""
    inv = invoices.mark(app.store_path, number, status)
    if as_json:
        echo_json(invoice_json(inv))
        return
    click.echo(f"{inv.invoice_number}: {inv.status}")


# `invoice collect` and `invoice refund` live with the other payment commands; importing them
# here registers them whenever the `invoice` group loads.
from hosting.cli import payments_commands  # noqa: E402, F401
