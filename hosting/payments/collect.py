"""`hosting invoice collect [NUMBER|--due]`: one PaymentIntent per invoice.

The store is held only between Stripe calls, never across one (the webhook endpoint writes
to it meanwhile). A second collect of the same invoice finds the stored PaymentIntent and
calls Stripe no more; a crash between Stripe's answer and our write is covered by the
idempotency keys (the tenant for its customer, the invoice number for its PaymentIntent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hosting import store
from hosting.billing.subscriptions import check_as_of, utcnow
from hosting.errors import BillingError, UsageError
from hosting.payments import records
from hosting.payments.gateway import Charged, Gateway
from hosting.payments.records import Due, Intent


@dataclass(frozen=True)
class Collected:
    invoice_number: str
    tenant: str
    amount: str  # e.g. "12.34 USD"
    intent_id: str | None
    status: str  # Stripe's PaymentIntent status, or why nothing was collected
    created: bool  # a PaymentIntent was created by this run
    error: str | None = None


def ensure_customer(store_path: Path, gateway: Gateway, inv: Due) -> str:
    """The tenant's Stripe Customer: created the first time, read from the store after."""
    with store.connect(store_path) as conn:
        known = records.customer(conn, inv.tenant)
    if known is not None:
        return known
    created = gateway.create_customer(inv.tenant, inv.tenant_name, inv.tenant_email)
    with store.connect(store_path) as conn, store.transaction(conn):
        known = records.customer(conn, inv.tenant)
        if known is not None:  # another run stored it first: Stripe gave it the same key
            return known
        records.add_customer(conn, inv.tenant, created, utcnow())
    return created


def selected(store_path: Path, number: str | None, due: bool, as_of: date | None) -> list[Due]:
    if (number is None) == (not due):
        raise UsageError("give an invoice NUMBER or --due", "e.g. `hosting invoice collect --due`")
    with store.connect(store_path) as conn:
        if number is not None:
            inv = records.invoice(conn, number)
            if inv.status not in ("pending", "failed"):
                raise BillingError(
                    f"invoice {number} is {inv.status}: there is nothing to collect",
                    "only pending and failed invoices are collected",
                )
            return [inv]
        day = check_as_of(as_of)
        return [
            i
            for i in records.unpaid(conn)
            if i.status == "pending"
            and i.due_date <= day
            and records.intent_of(conn, i.number) is None
        ]


def collect(
    store_path: Path,
    gateway: Gateway,
    number: str | None = None,
    *,
    due: bool = False,
    as_of: date | None = None,
) -> list[Collected]:
    return [
        collect_one(store_path, gateway, inv) for inv in selected(store_path, number, due, as_of)
    ]


def collect_one(store_path: Path, gateway: Gateway, inv: Due) -> Collected:
    shown = f"{inv.amount:.2f} {inv.currency}"
    with store.connect(store_path) as conn:
        existing = records.intent_of(conn, inv.number)
    if existing is not None:
        return Collected(inv.number, inv.tenant, shown, existing.intent_id, existing.status, False)
    amount = records.cents(inv.amount)
    if amount <= 0:
        return Collected(inv.number, inv.tenant, shown, None, "nothing owed", False)
    customer = ensure_customer(store_path, gateway, inv)
    charged = gateway.create_intent(inv.number, inv.tenant, customer, amount, inv.currency)
    created = record(store_path, inv, customer, amount, charged)
    return Collected(
        inv.number, inv.tenant, shown, charged.intent_id, charged.status, created, charged.error
    )


def record(store_path: Path, inv: Due, customer: str, amount: int, charged: Charged) -> bool:
    """Store the PaymentIntent; a declined card makes the invoice failed (dunning retries it).
    Paid is only ever the webhook's word. False when another run stored it first."""
    now = utcnow()
    with store.connect(store_path) as conn, store.transaction(conn):
        if records.intent_of(conn, inv.number) is not None:
            return False
        records.add_intent(
            conn,
            Intent(
                inv.number,
                charged.intent_id,
                inv.tenant,
                customer,
                amount,
                inv.currency,
                charged.status,
                charged.charge_id,
                1,
                charged.error,
            ),
            now,
        )
        if charged.error is not None:
            records.set_status(conn, inv.number, "failed", now)
    return True
