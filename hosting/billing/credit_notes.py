"""Credit notes: refunds and corrections of an issued invoice, never an edit of it (issue 15).

`CN-YYYYMMDD-NNNNNN`: the date is the credit note's issue date, NNNNNN a gapless sequence
across all credit notes (its own counter, read and advanced in the transaction that inserts).
A credit note credits an amount, tax included, of one invoice; all of an invoice's credit
notes together never exceed its total.

Its tax part: amount × rate ÷ (100 + rate), rounded half up to the cent; the credit note that
brings an invoice's credits to its total takes the invoice's tax less the tax already
credited instead, so fully credited invoices reconcile to the cent. Net = amount − tax.

Payment status is not changed here: a refund of a paid invoice (part B's `invoice refund`)
decides that; a correction of an unpaid one lowers its amount due.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from hosting import store
from hosting.billing import documents
from hosting.billing.money import ZERO, cents, div, mul
from hosting.billing.subscriptions import utcnow
from hosting.errors import BillingError, NotFoundError, UsageError


@dataclass(frozen=True)
class CreditNote:
    credit_note_number: str
    invoice_number: str
    issue_date: date
    currency: str
    amount: Decimal  # tax included
    net: Decimal
    tax: Decimal
    reason: str
    created_at: datetime


def credit_note_number(day: date, seq: int) -> str:
    return f"CN-{day:%Y%m%d}-{seq:06d}"


def split(
    amount: Decimal, doc: documents.Document, credited: Decimal, tax_credited: Decimal
) -> tuple[Decimal, Decimal]:
    """(net, tax) of a credit of `amount` against `doc`, after earlier credits (pure)."""
    if doc.tax_rate == 0:
        return amount, ZERO
    if credited + amount == doc.total:
        tax = doc.tax - tax_credited
    else:
        tax = cents(div(mul(amount, doc.tax_rate), 100 + doc.tax_rate))
    return amount - tax, tax


def creditable(doc: documents.Document, notes: list[CreditNote]) -> Decimal:
    """What may still be credited: the total less every credit note so far (never negative)."""
    return max(ZERO, doc.total - sum((n.amount for n in notes), ZERO))


_COLUMNS = (
    "credit_note_number, invoice_number, issue_date, currency, amount, net, tax, reason, created_at"
)


def of_invoices(conn: duckdb.DuckDBPyConnection, numbers: list[str]) -> dict[str, list[CreditNote]]:
    """Each invoice's credit notes, in number order."""
    out: dict[str, list[CreditNote]] = {}
    if not numbers:
        return out
    for r in store.rows_as_dicts(
        conn.execute(
            f"SELECT {_COLUMNS} FROM credit_notes WHERE list_contains($1, invoice_number) "
            "ORDER BY seq",
            [numbers],
        )
    ):
        out.setdefault(r["invoice_number"], []).append(CreditNote(**r))
    return out


def issue_in(
    conn: duckdb.DuckDBPyConnection,
    invoice_number: str,
    amount: Decimal | None,
    reason: str,
    *,
    today: date | None = None,
) -> CreditNote:
    """Issue a credit note inside the caller's transaction (so a refund and its credit note
    commit together). `amount` None credits everything that remains."""
    reason = reason.strip()
    if not reason:
        raise UsageError("a credit note needs a reason", "say why, e.g. --reason 'refund'")
    doc = documents.read(conn, [invoice_number]).get(invoice_number)
    if doc is None:
        raise NotFoundError(
            f"no invoice numbered `{invoice_number}`", "see `hosting invoice list` for the numbers"
        )
    notes = of_invoices(conn, [invoice_number]).get(invoice_number, [])
    left = creditable(doc, notes)
    if amount is None:
        amount = left
    if amount != cents(amount):
        raise UsageError(
            f"{amount} has more than two decimals", "give an amount in cents, e.g. 5.00"
        )
    if amount <= 0:
        why = "nothing remains to credit" if left == 0 else "the amount must be above 0.00"
        raise BillingError(
            f"invoice {invoice_number}: {why}",
            f"{left:.2f} {doc.currency} of {doc.total:.2f} remains creditable",
        )
    if amount > left:
        raise BillingError(
            f"invoice {invoice_number}: {amount:.2f} is more than the {left:.2f} "
            f"{doc.currency} that remains creditable",
            f"its total is {doc.total:.2f}; credit notes so far: "
            + (", ".join(f"{n.credit_note_number} {n.amount:.2f}" for n in notes) or "none"),
        )
    net, tax = split(
        amount, doc, sum((n.amount for n in notes), ZERO), sum((n.tax for n in notes), ZERO)
    )
    now = utcnow()
    day = today or now.date()
    if day < doc.issue_date:
        raise UsageError(
            f"a credit note cannot be dated {day}, before invoice {invoice_number} was issued "
            f"({doc.issue_date})",
            "give a later date",
        )
    row = conn.execute("SELECT last_value FROM credit_note_sequence WHERE id = 1").fetchone()
    seq = (int(row[0]) if row else 0) + 1
    note = CreditNote(
        credit_note_number(day, seq),
        invoice_number,
        day,
        doc.currency,
        amount,
        net,
        tax,
        reason,
        now,
    )
    conn.execute(
        f"INSERT INTO credit_notes (seq, {_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10)",
        [seq, *astuple(note)],  # the fields in _COLUMNS' order
    )
    conn.execute("INSERT INTO credit_note_seals VALUES ($1)", [note.credit_note_number])
    conn.execute("UPDATE credit_note_sequence SET last_value = $1 WHERE id = 1", [seq])
    return note


def issue_credit_note(
    store_path: Path,
    invoice_number: str,
    amount: Decimal | None,
    reason: str,
    *,
    today: date | None = None,
) -> CreditNote:
    """Issue a credit note of `amount` (tax included; None: all that remains) against an
    issued invoice. BillingError when it would credit more than remains; nothing written."""
    with store.connect(store_path) as conn, store.transaction(conn):
        return issue_in(conn, invoice_number, amount, reason, today=today)
