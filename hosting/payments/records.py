"""The payments tables of the store (migration 0007), read and written inside the caller's
transaction, and the one place invoices change status for payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import duckdb

from hosting.billing.invoices import TRANSITIONS
from hosting.errors import BillingError, NotFoundError


@dataclass(frozen=True)
class Intent:
    invoice_number: str
    intent_id: str
    tenant: str
    customer_id: str
    amount_cents: int
    currency: str
    status: str
    charge_id: str | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Due:
    """What payments need of an invoice."""

    number: str
    tenant: str
    tenant_name: str
    tenant_email: str
    amount: Decimal  # owed: the total less credit notes
    currency: str
    status: str
    due_date: date
    updated: date


def cents(amount: Decimal) -> int:
    """Stripe counts in the currency's smallest unit; invoice amounts are whole cents."""
    return int((amount * 100).to_integral_exact())


def invoice(conn: duckdb.DuckDBPyConnection, number: str) -> Due:
    row = conn.execute(
        f"{_DUE} WHERE i.invoice_number = $1",
        [number],
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"no invoice numbered `{number}`", "see `hosting invoice list` for the numbers"
        )
    return _due(row)


def unpaid(conn: duckdb.DuckDBPyConnection) -> list[Due]:
    """Pending and failed invoices, in number order."""
    rows = conn.execute(f"{_DUE} WHERE i.status IN ('pending', 'failed') ORDER BY i.seq").fetchall()
    return [_due(r) for r in rows]


# The invoice's total (tax included) less its credit notes is what is owed; the due date is
# the sealed document's (migration 0006).
_DUE = (
    "SELECT i.invoice_number, i.tenant, i.tenant_name, i.tenant_email, "
    "i.amount - coalesce((SELECT sum(c.amount) FROM credit_notes c "
    "WHERE c.invoice_number = i.invoice_number), 0), i.currency, i.status, d.due_date, "
    "i.updated_at FROM billing_invoices i "
    "LEFT JOIN invoice_documents d ON d.invoice_number = i.invoice_number"
)


def _due(row: tuple[object, ...]) -> Due:
    number, tenant, name, email, owed, currency, status, due, updated = row
    assert isinstance(updated, datetime) and isinstance(owed, Decimal)
    return Due(
        str(number),
        str(tenant),
        str(name),
        str(email),
        max(owed, Decimal(0)),
        str(currency),
        str(status),
        due if isinstance(due, date) else updated.date(),
        updated.date(),
    )


def customer(conn: duckdb.DuckDBPyConnection, tenant: str) -> str | None:
    row = conn.execute(
        "SELECT customer_id FROM payment_customers WHERE tenant = $1", [tenant]
    ).fetchone()
    return str(row[0]) if row else None


def add_customer(
    conn: duckdb.DuckDBPyConnection, tenant: str, customer_id: str, now: datetime
) -> None:
    conn.execute("INSERT INTO payment_customers VALUES ($1, $2, $3)", [tenant, customer_id, now])


_INTENT = (
    "invoice_number, intent_id, tenant, customer_id, amount_cents, currency, status, "
    "charge_id, attempts, last_error"
)


def intent_of(conn: duckdb.DuckDBPyConnection, number: str) -> Intent | None:
    row = conn.execute(
        f"SELECT {_INTENT} FROM payment_intents WHERE invoice_number = $1", [number]
    ).fetchone()
    return Intent(*row) if row else None


def intent_by_id(conn: duckdb.DuckDBPyConnection, intent_id: str) -> Intent | None:
    row = conn.execute(
        f"SELECT {_INTENT} FROM payment_intents WHERE intent_id = $1", [intent_id]
    ).fetchone()
    return Intent(*row) if row else None


def add_intent(conn: duckdb.DuckDBPyConnection, intent: Intent, now: datetime) -> None:
    conn.execute(
        f"INSERT INTO payment_intents ({_INTENT}, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        [*intent.__dict__.values(), now],
    )


def update_intent(
    conn: duckdb.DuckDBPyConnection,
    number: str,
    now: datetime,
    *,
    status: str,
    charge_id: str | None = None,
    error: str | None = None,
    attempted: bool = False,
) -> None:
    conn.execute(
        "UPDATE payment_intents SET status = $1, charge_id = coalesce($2, charge_id), "
        "last_error = $3, attempts = attempts + $4, updated_at = $5 WHERE invoice_number = $6",
        [status, charge_id, error, 1 if attempted else 0, now, number],
    )


def set_status(conn: duckdb.DuckDBPyConnection, number: str, status: str, now: datetime) -> bool:
    """Move the invoice to `status` by SPEC §3's transitions. False (and nothing changed) when
    it is there already; a BillingError when the transition is not allowed."""
    current = invoice(conn, number).status
    if current == status:
        return False
    if status not in TRANSITIONS[current]:
        raise BillingError(f"invoice {number} is {current}; it cannot become {status}")
    conn.execute(
        "UPDATE billing_invoices SET status = $1, updated_at = $2, "
        "paid_at = CASE WHEN $1 = 'paid' THEN $2 ELSE paid_at END WHERE invoice_number = $3",
        [status, now, number],
    )
    return True


def seen_event(conn: duckdb.DuckDBPyConnection, event_id: str) -> str | None:
    row = conn.execute(
        "SELECT outcome FROM payment_events WHERE event_id = $1", [event_id]
    ).fetchone()
    return str(row[0]) if row else None


def add_event(
    conn: duckdb.DuckDBPyConnection,
    event_id: str,
    kind: str,
    intent_id: str | None,
    number: str | None,
    outcome: str,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO payment_events VALUES ($1, $2, $3, $4, $5, $6)",
        [event_id, kind, intent_id, number, outcome, now],
    )
