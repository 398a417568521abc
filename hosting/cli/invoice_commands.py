"""`invoice credit` and `invoice send` (issue 15): corrections as credit notes, and the
invoice by email. Registered on the `invoice` group when billing_commands loads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

import click

from hosting.cli.billing_commands import invoice
from hosting.cli.context import App
from hosting.cli.output import as_of_option, echo_json, json_option, to_jsonable
from hosting.errors import UsageError

pass_app = click.make_pass_decorator(App)


def _amount(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"`{value}` is not an amount (e.g. 5.00)") from None
    if not amount.is_finite():
        raise click.BadParameter(f"`{value}` is not an amount (e.g. 5.00)")
    return amount


@invoice.command("credit")
@click.argument("number")
@click.option(
    "--amount",
    callback=_amount,
    metavar="AMOUNT",
    help="Tax included, e.g. 5.00 [default: all that remains creditable].",
)
@click.option("--reason", required=True, help="Why: printed on the credit note.")
@as_of_option("The credit note's date (YYYY-MM-DD, UTC; not after today) [default: today].")
@json_option
@pass_app
def invoice_credit(
    app: App,
    number: str,
    amount: Decimal | None,
    reason: str,
    as_of: date | None,
    as_json: bool,
) -> None:
    """Issue a credit note CN-YYYYMMDD-NNNNNN against invoice NUMBER (a correction; the
    invoice itself never changes). Never more than remains creditable."""
    from hosting.billing.credit_notes import issue_credit_note

    note = issue_credit_note(app.store_path, number, amount, reason, today=as_of)
    if as_json:
        echo_json(note)
        return
    tax = f" (tax {note.tax:.2f})" if note.tax else ""
    click.echo(
        f"{note.credit_note_number}: {note.amount:.2f} {note.currency}{tax} credited on "
        f"{number}, {note.issue_date}"
    )


@invoice.command("send")
@click.argument("number", required=False)
@click.option("--all-unsent", is_flag=True, help="Every invoice not emailed yet.")
@click.option("--resend", is_flag=True, help="Send NUMBER again though it was sent before.")
@json_option
@pass_app
def invoice_send(
    app: App, number: str | None, all_unsent: bool, resend: bool, as_json: bool
) -> None:
    """Email invoice NUMBER (or --all-unsent) to the tenant through platform.smtp: the invoice
    as the HTML body, its one-page PDF attached. Each sent message is recorded; a second send
    of the same invoice needs --resend."""
    from hosting.billing import delivery

    if (number is None) == (not all_unsent):
        raise UsageError(
            "give an invoice NUMBER or --all-unsent (one of the two)",
            "see `hosting invoice list` for the numbers",
        )
    if all_unsent and resend:
        raise UsageError("--resend is for one invoice: NUMBER --resend", None)
    base_dir = app.file_path.resolve().parent
    if number is not None:
        outcomes = [
            delivery.send_invoice(app.spec, app.store_path, base_dir, number, resend=resend)
        ]
    else:
        outcomes = delivery.send_unsent(app.spec, app.store_path, base_dir)
    if as_json:
        echo_json(
            {
                "sent": [to_jsonable(o.sent) for o in outcomes if o.sent],
                "skipped": [
                    {"invoice_number": o.invoice_number, "previous": to_jsonable(o.previous)}
                    for o in outcomes
                    if o.sent is None
                ],
            }
        )
        return
    if not outcomes:
        click.echo("no unsent invoices")
    for o in outcomes:
        if o.sent is not None:
            again = " again" if o.previous else ""
            click.echo(f"{o.invoice_number}: sent{again} to {o.sent.recipient}")
        elif o.previous is not None:
            click.echo(
                f"{o.invoice_number}: already sent to {o.previous.recipient} on "
                f"{o.previous.sent_at:%Y-%m-%d %H:%M} UTC; not sent again "
                "(--resend sends it again)"
            )
