"""`hosting invoice refund NUMBER [--amount]`: money back through Stripe, documented by a
credit note (hosting.billing.credit_notes), never by an edit of the invoice.

The amount is checked against what remains creditable before Stripe is asked; the refund and
its credit note are then written in one transaction. The refund's idempotency key names the
invoice, how many refunds it had and the amount, so running the same command again after a
crash between Stripe's answer and our write gets the same refund back, not a second one.
A refund of everything that remains makes the invoice `refunded`; a partial one leaves it paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hosting import store
from hosting.billing import credit_notes, documents
from hosting.billing.money import ZERO
from hosting.billing.subscriptions import utcnow
from hosting.errors import BillingError, NotFoundError
from hosting.payments import records
from hosting.payments.gateway import Gateway


@dataclass(frozen=True)
class Refunded:
    invoice_number: str
    refund_id: str
    credit_note: str
    amount: Decimal
    currency: str
    invoice_status: str


def refund(
    store_path: Path, gateway: Gateway, number: str, amount: Decimal | None, reason: str
) -> Refunded:
    with store.connect(store_path) as conn:
        inv = records.invoice(conn, number)
        intent = records.intent_of(conn, number)
        doc = documents.read(conn, [number]).get(number)
        notes = credit_notes.of_invoices(conn, [number]).get(number, [])
        done = conn.execute(
            "SELECT count(*) FROM payment_refunds WHERE invoice_number = $1", [number]
        ).fetchone()
    if doc is None:
        raise NotFoundError(f"invoice {number} has no document to credit")
    if inv.status != "paid":
        raise BillingError(
            f"invoice {number} is {inv.status}: only a paid invoice is refunded",
            "an unpaid invoice is corrected with a credit note instead",
        )
    if intent is None or intent.status != "succeeded":
        raise BillingError(
            f"invoice {number} was not paid through Stripe: there is no charge to refund",
            "pay the money back outside Stripe and record it with a credit note",
        )
    left = credit_notes.creditable(doc, notes)
    wanted = left if amount is None else amount
    if wanted <= ZERO or wanted > left:
        raise BillingError(
            f"invoice {number}: cannot refund {wanted:.2f}; {left:.2f} {doc.currency} remains",
            "give --amount up to what remains, or leave it out to refund all of it",
        )
    count = int(done[0]) if done else 0
    key = f"{number}/refund/{count + 1}/{records.cents(wanted)}"
    refund_id = gateway.refund(intent.intent_id, records.cents(wanted), key)
    now = utcnow()
    with store.connect(store_path) as conn, store.transaction(conn):
        note = credit_notes.issue_in(conn, number, wanted, f"{reason} (Stripe refund {refund_id})")
        conn.execute(
            "INSERT INTO payment_refunds VALUES ($1, $2, $3, $4, $5)",
            [refund_id, number, note.credit_note_number, wanted, now],
        )
        status = "paid"
        if wanted == left:
            records.set_status(conn, number, "refunded", now)
            status = "refunded"
    return Refunded(number, refund_id, note.credit_note_number, wanted, doc.currency, status)
