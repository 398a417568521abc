"""Payments commands (issue 15): `invoice collect`, `invoice refund`, `payments webhook`
and `payments dunning`. The key and the webhook secret are read here and never printed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from hosting.cli import cli
from hosting.cli.billing_commands import invoice
from hosting.cli.context import App
from hosting.cli.output import as_of_option, echo_json, json_option, table
from hosting.errors import UsageError

pass_app = click.make_pass_decorator(App)


def _gateway(app: App, *, webhook: bool = False) -> Any:
    from hosting.payments.config import stripe_config
    from hosting.payments.gateway import Gateway

    config = stripe_config(app.spec, app.file_path.resolve().parent, webhook=webhook)
    return Gateway(config, app.spec.platform.name)


@invoice.command("collect")
@click.argument("number", required=False)
@click.option("--due", is_flag=True, help="Every pending invoice due by the date, not collected.")
@as_of_option()
@json_option
@pass_app
def invoice_collect(
    app: App, number: str | None, due: bool, as_of: date | None, as_json: bool
) -> None:
    """Charge invoices through Stripe: one PaymentIntent per invoice (key: its number)."""
    from hosting.payments.collect import collect

    if number is not None and due:
        raise UsageError("give an invoice NUMBER or --due, not both")
    done = collect(app.store_path, _gateway(app), number, due=due, as_of=as_of)
    if as_json:
        echo_json({"collected": done})
        return
    if not done:
        click.echo("nothing to collect")
        return
    rows = [
        [
            c.invoice_number,
            c.tenant,
            c.amount,
            c.intent_id or "-",
            ("created, " if c.created else "existing, ") + c.status if c.intent_id else c.status,
        ]
        for c in done
    ]
    click.echo(table(["Invoice", "Tenant", "Amount", "PaymentIntent", "State"], rows))
    for c in done:
        if c.error:
            click.echo(f"{c.invoice_number}: declined: {c.error}", err=True)


def _amount(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"`{value}` is not an amount (e.g. 5.00)") from None
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter(f"`{value}` must be above 0")
    return amount


@invoice.command("refund")
@click.argument("number")
@click.option(
    "--amount", callback=_amount, help="Tax included [default: all that remains creditable]."
)
@click.option("--reason", default="refund", show_default=True, help="Said on the credit note.")
@json_option
@pass_app
def invoice_refund(
    app: App, number: str, amount: Decimal | None, reason: str, as_json: bool
) -> None:
    """Refund a paid invoice through Stripe and issue its credit note (CN-…)."""
    from hosting.payments.refund import refund

    done = refund(app.store_path, _gateway(app), number, amount, reason)
    if as_json:
        echo_json(done)
        return
    click.echo(
        f"{done.invoice_number}: refunded {done.amount:.2f} {done.currency} "
        f"({done.refund_id}), credit note {done.credit_note}; invoice {done.invoice_status}"
    )


@cli.group()
def payments() -> None:
    """Stripe: the webhook endpoint and dunning (retries, reminders, suspension)."""


def _listen(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"`{value}` is not HOST:PORT (e.g. 127.0.0.1:8470)")
    return host.strip("[]"), int(port)


@payments.command("webhook")
@click.option(
    "--listen",
    required=True,
    callback=_listen,
    help="HOST:PORT to serve on (put it behind the edge or a tunnel for Stripe to reach).",
)
@pass_app
def payments_webhook(app: App, listen: tuple[str, int]) -> None:
    """Receive Stripe's events until stopped: signature checked, idempotent on event id."""
    from hosting.payments import webhook
    from hosting.payments.config import stripe_config

    config = stripe_config(app.spec, app.file_path.resolve().parent, webhook=True)
    state_dir = app.state_dir.absolute()

    def report(o: webhook.Outcome) -> None:
        what = " ".join(x for x in (o.event_id, o.type, o.invoice_number) if x)
        click.echo(f"{o.status} {what}: {o.outcome}".replace("  ", " "), err=o.status >= 400)
        if o.changed and o.invoice_number:
            _audit_event(state_dir, o)

    host, port = listen
    try:
        webhook.serve(
            host,
            port,
            app.store_path,
            config.webhook_secret,
            report,
            on_ready=lambda: click.echo(f"listening on http://{listen[0]}:{listen[1]}/"),
        )
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}", "pick a free port"
        ) from None


def _audit_event(state_dir: Path, o: Any) -> None:
    """Each event that changed an invoice is its own audit entry: the endpoint runs for days,
    and its one entry at exit would say nothing about them."""
    from hosting.audit import log
    from hosting.cli.auditing import who

    stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    log.append(
        log.path_in(state_dir),
        {
            "time": stamp,
            "started": stamp,
            "who": who(),
            "what": {
                "command": "payments webhook",
                "args": {"event": o.event_id, "type": o.type, "invoice": o.invoice_number},
            },
            "spec": None,
            "result": {"status": "ok", "exit_code": 0, "message": o.outcome},
        },
    )


@payments.command("dunning")
@as_of_option()
@json_option
@pass_app
def payments_dunning(app: App, as_of: date | None, as_json: bool) -> None:
    """Retry unpaid invoices (day 1, 3, 7), remind, and suspend after suspend_after_days."""
    from hosting.billing.subscriptions import check_as_of
    from hosting.payments import dunning

    spec = app.spec
    billing = spec.platform.billing
    gateway = _gateway(app) if spec.platform.payments is not None else None
    taken = dunning.run(
        app.store_path,
        check_as_of(as_of),
        suspend_after=billing.suspend_after_days if billing is not None else None,
        gateway=gateway,
        remind=_reminder(app),
    )
    if as_json:
        echo_json({"steps": taken})
        return
    if not taken:
        click.echo("no dunning step due")
        return
    rows = [[t.invoice_number, t.tenant, t.step, t.day, t.outcome] for t in taken]
    click.echo(table(["Invoice", "Tenant", "Step", "Day", "Outcome"], rows))
    if any(t.step in ("suspend", "unsuspend") and "suspended" in t.outcome for t in taken):
        click.echo("run `hosting apply` to stop or start the tenants' sites accordingly")


def _reminder(app: App) -> Any:
    """Reminders by email through `platform.smtp` (hosting.billing.delivery, issue 15 part A);
    without it they are recorded and not sent. A failed send is the step's outcome, so the
    other steps still run."""
    from hosting.payments import dunning

    if app.spec.platform.smtp is None:
        return dunning.no_mail
    from hosting.billing.delivery import send_reminder
    from hosting.errors import HostingError

    def remind(inv: Any, day: int) -> str:
        try:
            sent = send_reminder(
                app.spec, app.store_path, app.file_path.resolve().parent, inv.number
            )
        except HostingError as exc:
            return f"reminder not sent: {exc.message}"
        return f"emailed to {sent.recipient}"

    return remind


def echo_account(acc: Any) -> None:
    """The payments part of `subscription TENANT`: suspended or not, and each dunning step."""
    if acc.suspended is not None:
        s = acc.suspended
        click.echo(f"  SUSPENDED since {s.suspended_on}: invoice {s.invoice_number} unpaid")
    for s in acc.suspensions:
        if s.lifted_on is not None:
            click.echo(f"  suspended {s.suspended_on} to {s.lifted_on} ({s.invoice_number})")
    if acc.dunning:
        click.echo("  dunning:")
        for st in acc.dunning:
            click.echo(f"    {st.on_date} {st.invoice_number} day {st.day} {st.step}: {st.outcome}")
