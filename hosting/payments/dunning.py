"""Dunning: what happens to an invoice nobody paid, day by day, on an injectable clock.

An invoice is in dunning from the first day it is failed or overdue: its due date, or the day
it failed if that came first. Counting days from there:

- days 1, 3 and 7: the payment is retried (the invoice's PaymentIntent confirmed again with
  the card on file; created first if the invoice was never collected) and a reminder is sent;
- day `platform.billing.suspend_after_days` (when set): the tenant is suspended.

Each step is recorded once per invoice and schedule day (dunning_steps), so running dunning
twice on a day, or every hour, does each step once. A run that comes late does only the
latest missed retry and reminder, and records the earlier ones as skipped: a tenant is not
charged three times or sent three reminders in one morning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hosting import store
from hosting.billing.subscriptions import utcnow
from hosting.errors import HostingError
from hosting.payments import records, suspension
from hosting.payments.collect import collect_one
from hosting.payments.gateway import Gateway
from hosting.payments.records import Due

RETRY_DAYS = (1, 3, 7)


@dataclass(frozen=True)
class Planned:
    step: str  # retry, reminder, suspend
    day: int
    act: bool  # False: a missed day, recorded as skipped


@dataclass(frozen=True)
class Taken:
    invoice_number: str
    tenant: str
    step: str
    day: int
    outcome: str


def start_of(inv: Due) -> date:
    """The first day the invoice is failed or overdue (see the module's docstring)."""
    return min(inv.due_date, inv.updated) if inv.status == "failed" else inv.due_date


def plan(days: int, suspend_after: int | None, done: set[tuple[str, int]]) -> list[Planned]:
    """The steps due `days` days into dunning that `done` does not hold yet (pure)."""
    out: list[Planned] = []
    for step in ("retry", "reminder"):
        missing = [d for d in RETRY_DAYS if d <= days and (step, d) not in done]
        out.extend(Planned(step, d, d == max(missing)) for d in missing)
    if (
        suspend_after is not None
        and days >= suspend_after
        and ("suspend", suspend_after) not in done
    ):
        out.append(Planned("suspend", suspend_after, True))
    return out


Reminder = Callable[[Due, int], str]  # (invoice, day) → outcome, e.g. "sent to a@b.c"


def no_mail(inv: Due, day: int) -> str:
    return "recorded; not emailed (no email delivery configured)"


def run(
    store_path: Path,
    today: date,
    *,
    suspend_after: int | None,
    gateway: Gateway | None,
    remind: Reminder = no_mail,
) -> list[Taken]:
    taken: list[Taken] = []
    with store.connect(store_path) as conn:
        unpaid = [i for i in records.unpaid(conn) if start_of(i) < today]
        done = {
            (str(n), str(s), int(d))
            for n, s, d in conn.execute(
                "SELECT invoice_number, step, day FROM dunning_steps"
            ).fetchall()
        }
    for inv in unpaid:
        days = (today - start_of(inv)).days
        mine = {(s, d) for n, s, d in done if n == inv.number}
        for step in plan(days, suspend_after, mine):
            outcome = _act(store_path, inv, step, today, gateway, remind) if step.act else "skipped"
            _record(store_path, inv, step, today, outcome)
            taken.append(Taken(inv.number, inv.tenant, step.step, step.day, outcome))
    taken.extend(_lift_settled(store_path, today))
    return taken


def _act(
    store_path: Path,
    inv: Due,
    step: Planned,
    today: date,
    gateway: Gateway | None,
    remind: Reminder,
) -> str:
    if step.step == "reminder":
        return remind(inv, step.day)
    if step.step == "suspend":
        with store.connect(store_path) as conn, store.transaction(conn):
            opened = suspension.suspend(conn, inv.tenant, inv.number, today, utcnow())
        return "suspended" if opened else "already suspended"
    if gateway is None:
        return "not retried: no payment provider (platform.payments)"
    try:
        return _retry(store_path, inv, step.day, gateway)
    except HostingError as exc:  # Stripe down: recorded, and the next step still runs
        return f"retry failed: {exc.message}"


def _retry(store_path: Path, inv: Due, day: int, gateway: Gateway) -> str:
    with store.connect(store_path) as conn:
        intent = records.intent_of(conn, inv.number)
    if intent is None:
        done = collect_one(store_path, gateway, inv)
        return f"collected: {done.intent_id} {done.status}"
    charged = gateway.retry(intent.intent_id, intent.customer_id, f"{inv.number}/retry/{day}")
    with store.connect(store_path) as conn, store.transaction(conn):
        records.update_intent(
            conn, inv.number, utcnow(), status=charged.status, error=charged.error, attempted=True
        )
    if charged.error:
        return f"retried {intent.intent_id}: not paid ({charged.error})"
    return f"retried {intent.intent_id}: {charged.status}"


def _record(store_path: Path, inv: Due, step: Planned, today: date, outcome: str) -> None:
    with store.connect(store_path) as conn:
        conn.execute(
            "INSERT INTO dunning_steps VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            [inv.number, inv.tenant, step.step, step.day, today, outcome, utcnow()],
        )


def _lift_settled(store_path: Path, today: date) -> list[Taken]:
    """Suspensions whose invoices were paid by other means (e.g. `invoice mark … paid`)."""
    out: list[Taken] = []
    with store.connect(store_path) as conn, store.transaction(conn):
        open_ones = conn.execute(
            "SELECT tenant, invoice_number FROM tenant_suspensions WHERE lifted_on IS NULL"
        ).fetchall()
        for tenant, number in open_ones:
            if suspension.lift_if_settled(conn, str(tenant), today, "dunning"):
                out.append(Taken(str(number), str(tenant), "unsuspend", 0, "unsuspended: paid"))
    return out
