"""`hosting invoice send`: the invoice by email, HTML body and PDF attached (issue 15).

Each message sent is recorded in `invoice_deliveries` after the server accepted it. An
invoice with a recorded `invoice` delivery is not sent again unless asked (`resend`), so
`invoice send --all-unsent` can run from cron. Delivery is at least once: a crash between
the server's acceptance and the record means the next run sends it again.

`send_reminder` is for dunning (hosting.payments): the same message with a reminder's
subject and opening line, recorded as kind `reminder`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from hosting import store
from hosting.billing import invoices, mail
from hosting.billing.invoices import Invoice
from hosting.billing.subscriptions import utcnow
from hosting.errors import BillingError
from hosting.spec.models import Spec


@dataclass(frozen=True)
class Delivery:
    invoice_number: str
    attempt: int
    kind: str  # invoice | reminder
    recipient: str
    message_id: str
    sent_at: datetime


@dataclass(frozen=True)
class Outcome:
    invoice_number: str
    sent: Delivery | None  # None: not sent, see `previous`
    previous: Delivery | None  # the earlier invoice delivery, when there was one


def deliveries(store_path: Path, number: str | None = None) -> list[Delivery]:
    """Recorded deliveries (of one invoice, or all), oldest first."""
    where, params = ("WHERE invoice_number = $1", [number]) if number else ("", [])
    with store.connect(store_path) as conn:
        rows = store.rows_as_dicts(
            conn.execute(
                "SELECT invoice_number, attempt, kind, recipient, message_id, sent_at "
                f"FROM invoice_deliveries {where} ORDER BY sent_at, invoice_number, attempt",
                params,
            )
        )
    return [Delivery(**r) for r in rows]


def _subject(inv: Invoice, seller: str, reminder: bool) -> str:
    due = f", due {inv.due_date}" if inv.due_date else ""
    what = "Reminder: invoice" if reminder else "Invoice"
    return f"{what} {inv.invoice_number} from {seller}: {inv.currency} {inv.amount_due:.2f}{due}"


def _text(inv: Invoice, seller: str, reminder: bool) -> str:
    opening = (
        f"Our records show invoice {inv.invoice_number} as unpaid."
        if reminder
        else f"Please find invoice {inv.invoice_number} attached."
    )
    due = f" by {inv.due_date}" if inv.due_date else ""
    return (
        f"Hello {inv.tenant_name},\n\n{opening}\n\n"
        f"Period: {inv.period_start:%Y-%m-%d} to {inv.period_end:%Y-%m-%d}\n"
        f"Total: {inv.currency} {inv.amount:.2f}\n"
        f"Amount due{due}: {inv.currency} {inv.amount_due:.2f}\n\n{seller}\n"
    )


def _compose(
    spec: Spec, store_path: Path, inv: Invoice, reminder: bool
) -> tuple[EmailMessage, str]:
    from hosting.reports import api
    from hosting.reports.pdf import html_to_pdf

    smtp = mail.smtp_of(spec)
    doc = inv.document
    seller = (doc.seller.name if doc else "") or spec.platform.name
    # Today's billing contact when the tenant is still in the file (an address can change
    # after the invoice was issued); the one it was issued to otherwise.
    tenant = spec.tenants.get(inv.tenant)
    recipient = tenant.email if tenant else ((doc.buyer.email if doc else "") or inv.tenant_email)
    if not recipient:
        raise BillingError(f"invoice {inv.invoice_number} has no recipient email address")
    html = api.invoice_html(spec, store_path, inv.invoice_number)
    pdf = mail.Attachment(f"{inv.invoice_number}.pdf", "application/pdf", html_to_pdf(html))
    msg = mail.message(
        smtp.from_,
        recipient,
        _subject(inv, seller, reminder),
        _text(inv, seller, reminder),
        html,
        [pdf],
    )
    return msg, recipient


def _record(store_path: Path, number: str, kind: str, recipient: str, msg_id: str) -> Delivery:
    with store.connect(store_path) as conn, store.transaction(conn):
        row = conn.execute(
            "SELECT coalesce(max(attempt), 0) FROM invoice_deliveries WHERE invoice_number = $1",
            [number],
        ).fetchone()
        done = Delivery(number, (int(row[0]) if row else 0) + 1, kind, recipient, msg_id, utcnow())
        conn.execute(
            "INSERT INTO invoice_deliveries VALUES ($1, $2, $3, $4, $5, $6)",
            [done.invoice_number, done.attempt, kind, recipient, msg_id, done.sent_at],
        )
    return done


def _deliver(
    spec: Spec,
    store_path: Path,
    base_dir: Path,
    inv: Invoice,
    kind: str,
    tls: ssl.SSLContext | None,
) -> Delivery:
    smtp = mail.smtp_of(spec)
    login = mail.credentials(smtp, base_dir)  # before composing: a missing secret fails fast
    msg, recipient = _compose(spec, store_path, inv, kind == "reminder")
    mail.send(smtp, msg, login, tls)
    return _record(store_path, inv.invoice_number, kind, recipient, str(msg["Message-ID"]))


def send_invoice(
    spec: Spec,
    store_path: Path,
    base_dir: Path,
    number: str,
    *,
    resend: bool = False,
    tls: ssl.SSLContext | None = None,
) -> Outcome:
    """Email invoice `number` unless it was sent before (then only with `resend`)."""
    inv = invoices.get_invoice(store_path, number)
    previous = next(
        (d for d in reversed(deliveries(store_path, number)) if d.kind == "invoice"), None
    )
    if previous is not None and not resend:
        return Outcome(number, None, previous)
    return Outcome(number, _deliver(spec, store_path, base_dir, inv, "invoice", tls), previous)


def unsent(store_path: Path) -> list[Invoice]:
    """Invoices, in number order, with no recorded `invoice` delivery (any status)."""
    sent = {d.invoice_number for d in deliveries(store_path) if d.kind == "invoice"}
    return [i for i in invoices.list_invoices(store_path) if i.invoice_number not in sent]


def send_unsent(
    spec: Spec, store_path: Path, base_dir: Path, *, tls: ssl.SSLContext | None = None
) -> list[Outcome]:
    """Send every unsent invoice; stops at the first failure (those sent stay recorded)."""
    out: list[Outcome] = []
    for inv in unsent(store_path):
        try:
            done = _deliver(spec, store_path, base_dir, inv, "invoice", tls)
        except mail.MailError as exc:
            raise mail.MailError(
                f"{inv.invoice_number}: {exc.message} (sent before it: {len(out)})", exc.hint
            ) from None
        out.append(Outcome(inv.invoice_number, done, None))
    return out


def send_reminder(
    spec: Spec,
    store_path: Path,
    base_dir: Path,
    number: str,
    *,
    tls: ssl.SSLContext | None = None,
) -> Delivery:
    """A payment reminder for dunning: the invoice again (PDF attached), recorded as kind
    `reminder`; never skipped, since each dunning step decides once whether to send."""
    inv = invoices.get_invoice(store_path, number)
    return _deliver(spec, store_path, base_dir, inv, "reminder", tls)
