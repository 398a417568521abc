"""Invoices: generation (idempotent, gapless numbers), reading, and status transitions.

`run` holds the store's single write connection for one transaction: it records new tenants,
finds every period that ended on or before the as-of date without an invoice, aggregates their
usage in one SQL statement, prices them (pure), numbers them from the gapless counter and
inserts everything set-based. The UNIQUE (tenant, period_start) key is the last line of
defence: a second run, or a concurrent one waiting for the file lock, finds nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from hosting import store
from hosting.billing import credit_notes, documents, schedule
from hosting.billing.credit_notes import CreditNote
from hosting.billing.documents import Document
from hosting.billing.money import CURRENCY, ZERO, quantity
from hosting.billing.pricing import Line, Usage, cost_of, price_period, total
from hosting.billing.schedule import Period
from hosting.billing.subscriptions import (
    check_as_of,
    load_history,
    require_tenant,
    sync_conn,
    utcnow,
)
from hosting.billing.usage import Window, aggregate, midnight
from hosting.errors import BillingError, NotFoundError, UsageError
from hosting.spec.models import Spec

STATUSES = ("pending", "paid", "failed", "refunded")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("paid", "failed"),
    "failed": ("paid",),
    "paid": ("refunded",),
    "refunded": (),
}


@dataclass(frozen=True)
class InvoiceLine:
    line_no: int
    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    plan: str | None


@dataclass(frozen=True)
class Invoice:
    """An invoice as stored; field names are the product document's."""

    invoice_number: str
    tenant: str
    tenant_name: str
    tenant_email: str
    subscription_id: str
    plan: str
    billing_cycle: str
    amount: Decimal
    currency: str
    status: str
    period_start: datetime
    period_end: datetime
    base_cost: Decimal
    storage_cost: Decimal
    bandwidth_cost: Decimal
    storage_used_gb: Decimal
    storage_included_gb: int
    bandwidth_used_gb: Decimal
    bandwidth_included_gb: int
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime
    lines: tuple[InvoiceLine, ...] = field(default=())
    # The sealed document (issue 15): seller, buyer, due date, net, tax and total.
    document: Document | None = None
    credit_notes: tuple[CreditNote, ...] = field(default=())

    @property
    def due_date(self) -> date | None:
        return self.document.due_date if self.document else None

    @property
    def credited(self) -> Decimal:
        return sum((n.amount for n in self.credit_notes), ZERO)

    @property
    def amount_due(self) -> Decimal:
        """What the tenant still owes: nothing once paid or refunded; otherwise the total
        less what credit notes took off it."""
        if self.status in ("paid", "refunded"):
            return ZERO
        return max(ZERO, self.amount - self.credited)


@dataclass(frozen=True)
class Draft:
    """A priced period before it gets a number (pure result of `draft`)."""

    period: Period
    usage: Usage
    lines: tuple[Line, ...]

    @property
    def amount(self) -> Decimal:
        return total(list(self.lines))


@dataclass(frozen=True)
class RunResult:
    as_of: date
    created: list[Invoice]
    already_invoiced: int  # ended periods that had an invoice before this run


def invoice_number(period_end: date, seq: int) -> str:
    return f"INV-{period_end:%Y%m%d}-{seq:06d}"


def draft(period: Period, usage: Usage) -> Draft:
    return Draft(period, usage, tuple(price_period(period, usage)))


def due_periods(
    history: dict[str, list[schedule.HistoryRow]],
    invoiced: set[tuple[str, date]],
    as_of: date,
) -> tuple[list[Period], int]:
    """Periods that ended on or before `as_of` with no invoice yet, and how many have one."""
    due: list[Period] = []
    done = 0
    for tenant, rows in history.items():
        for period in schedule.periods(tenant, rows, until=as_of):
            if period.end > as_of:
                continue
            if (tenant, period.start) in invoiced:
                done += 1
            else:
                due.append(period)
    due.sort(key=lambda p: (p.end, p.tenant, p.start))
    return due, done


def windows_of(periods: list[Period]) -> list[Window]:
    return [
        Window(p.tenant, midnight(p.start), midnight(p.end), midnight(p.nominal_end))
        for p in periods
    ]


def run(
    store_path: Path, spec: Spec | None, as_of: date | None = None, tenant: str | None = None
) -> RunResult:
    """`hosting invoice run`: invoice every ended period that has none (idempotent)."""
    day = check_as_of(as_of)
    with store.connect(store_path) as conn:
        try:
            with store.transaction(conn):
                result = _run(conn, spec, day, tenant)
        except duckdb.ConstraintException as exc:
            raise BillingError(
                f"invoice run refused by the store, nothing written: {exc}",
                "another run invoiced the same period; run again to see its invoices",
            ) from None
    return result


def _run(
    conn: duckdb.DuckDBPyConnection, spec: Spec | None, day: date, tenant: str | None
) -> RunResult:
    if spec is not None:
        sync_conn(conn, spec, None, only_new=True)
    history = load_history(conn, [tenant] if tenant else None)
    if tenant is not None:
        require_tenant(spec, conn, tenant)
    invoiced = {
        (t, ps.date())
        for t, ps in conn.execute(
            "SELECT tenant, period_start FROM billing_invoices"
            + (" WHERE tenant = $1" if tenant else ""),
            [tenant] if tenant else [],
        ).fetchall()
    }
    due, done = due_periods(history, invoiced, day)
    if not due:
        return RunResult(day, [], done)
    raw = aggregate(conn, windows_of(due))
    windows = windows_of(due)
    drafts = [draft(p, r.usage(w)) for p, r, w in zip(due, raw, windows, strict=True)]
    contacts = _contacts(conn, spec)
    row = conn.execute("SELECT last_value FROM billing_invoice_sequence WHERE id = 1").fetchone()
    last = int(row[0]) if row else 0
    now = utcnow()
    invoices = [
        _invoice(
            spec, d, last + i + 1, contacts.get(d.period.tenant, (d.period.tenant, "")), day, now
        )
        for i, d in enumerate(drafts)
    ]
    _insert(conn, invoices, last + len(invoices))
    return RunResult(day, invoices, done)


def _contacts(conn: duckdb.DuckDBPyConnection, spec: Spec | None) -> dict[str, tuple[str, str]]:
    """Name and email for the invoice: the file's if the tenant is there, else as recorded."""
    out = {
        t: (n, e)
        for t, n, e in conn.execute(
            "SELECT tenant, arg_max(tenant_name, created_at), arg_max(email, created_at) "
            "FROM subscriptions GROUP BY tenant"
        ).fetchall()
    }
    if spec is not None:
        out.update({tid: (t.name, t.email) for tid, t in spec.tenants.items()})
    return out


def _invoice(
    spec: Spec | None, d: Draft, seq: int, contact: tuple[str, str], day: date, now: datetime
) -> Invoice:
    """`day`, the run's as-of day, is the issue date: the due date counts from it."""
    p, lines = d.period, list(d.lines)
    number = invoice_number(p.end, seq)
    doc = documents.document(spec, number, p.tenant, contact, CURRENCY, total(lines), day, now)
    return Invoice(
        invoice_number=number,
        tenant=p.tenant,
        tenant_name=contact[0],
        tenant_email=contact[1],
        subscription_id=p.subscription_id,
        plan=p.included.plan,
        billing_cycle=p.included.cycle,
        amount=doc.total,
        currency=CURRENCY,
        status="pending",
        period_start=midnight(p.start),
        period_end=midnight(p.end),
        base_cost=cost_of(lines, "base", "credit"),
        storage_cost=cost_of(lines, "storage"),
        bandwidth_cost=cost_of(lines, "bandwidth"),
        storage_used_gb=quantity(d.usage.storage_gb),
        storage_included_gb=p.included.storage_gb,
        bandwidth_used_gb=quantity(d.usage.bandwidth_gb),
        bandwidth_included_gb=p.included.bandwidth_gb,
        paid_at=None,
        created_at=now,
        updated_at=now,
        lines=tuple(
            InvoiceLine(
                i + 1, ln.kind, ln.description, ln.quantity, ln.unit_price, ln.amount, ln.plan
            )
            for i, ln in enumerate(lines)
        ),
        document=doc,
    )


_INVOICE_COLUMNS = (
    "invoice_number, seq, tenant, tenant_name, tenant_email, subscription_id, plan, "
    "billing_cycle, amount, currency, status, period_start, period_end, base_cost, "
    "storage_cost, bandwidth_cost, storage_used_gb, storage_included_gb, bandwidth_used_gb, "
    "bandwidth_included_gb, paid_at, created_at, updated_at"
)
_INVOICE_TYPES = (
    *("VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"),
    *("DECIMAL(18,2)", "VARCHAR", "VARCHAR", "TIMESTAMP", "TIMESTAMP", "DECIMAL(18,2)"),
    *("DECIMAL(18,2)", "DECIMAL(18,2)", "DECIMAL(38,12)", "INTEGER", "DECIMAL(38,12)"),
    *("INTEGER", "TIMESTAMP", "TIMESTAMP", "TIMESTAMP"),
)
_LINE_COLUMNS = "invoice_number, line_no, kind, description, quantity, unit_price, amount, plan"
_LINE_TYPES = (
    *("VARCHAR", "INTEGER", "VARCHAR", "VARCHAR", "DECIMAL(38,12)", "DECIMAL(18,2)"),
    *("DECIMAL(18,2)", "VARCHAR"),
)


_unnest_insert = documents.unnest_insert


def _insert(conn: duckdb.DuckDBPyConnection, invoices: list[Invoice], last: int) -> None:
    inv_rows = [
        (
            i.invoice_number,
            int(i.invoice_number.rsplit("-", 1)[1]),
            i.tenant,
            i.tenant_name,
            i.tenant_email,
            i.subscription_id,
            i.plan,
            i.billing_cycle,
            i.amount,
            i.currency,
            i.status,
            i.period_start,
            i.period_end,
            i.base_cost,
            i.storage_cost,
            i.bandwidth_cost,
            i.storage_used_gb,
            i.storage_included_gb,
            i.bandwidth_used_gb,
            i.bandwidth_included_gb,
            i.paid_at,
            i.created_at,
            i.updated_at,
        )
        for i in invoices
    ]
    line_rows = [
        (
            i.invoice_number,
            ln.line_no,
            ln.kind,
            ln.description,
            ln.quantity,
            ln.unit_price,
            ln.amount,
            ln.plan,
        )
        for i in invoices
        for ln in i.lines
    ]
    _unnest_insert(conn, "billing_invoices", _INVOICE_COLUMNS, list(_INVOICE_TYPES), inv_rows)
    _unnest_insert(conn, "invoice_lines", _LINE_COLUMNS, list(_LINE_TYPES), line_rows)
    docs = [i.document for i in invoices if i.document is not None]
    documents.insert_and_seal(conn, docs, [(r[0], r[1]) for r in line_rows])
    conn.execute("UPDATE billing_invoice_sequence SET last_value = $1 WHERE id = 1", [last])


_SELECT = f"SELECT {_INVOICE_COLUMNS} FROM billing_invoices"


def _read(conn: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Invoice]:
    rows = store.rows_as_dicts(conn.execute(f"{_SELECT} {where} ORDER BY seq", params))
    if not rows:
        return []
    numbers = [r["invoice_number"] for r in rows]
    lines: dict[str, list[InvoiceLine]] = {}
    for r in store.rows_as_dicts(
        conn.execute(
            f"SELECT {_LINE_COLUMNS} FROM invoice_lines WHERE list_contains($1, invoice_number) "
            "ORDER BY invoice_number, line_no",
            [numbers],
        )
    ):
        number = r.pop("invoice_number")
        lines.setdefault(number, []).append(InvoiceLine(**r))
    docs = documents.read(conn, numbers)
    notes = credit_notes.of_invoices(conn, numbers)
    out = []
    for r in rows:
        r.pop("seq")
        n = r["invoice_number"]
        out.append(
            Invoice(
                **r,
                lines=tuple(lines.get(n, [])),
                document=docs.get(n),
                credit_notes=tuple(notes.get(n, [])),
            )
        )
    return out


def get_invoice(store_path: Path, number: str) -> Invoice:
    """One invoice with its lines; NotFoundError if there is none with that number."""
    with store.connect(store_path) as conn:
        found = _read(conn, "WHERE invoice_number = $1", [number])
    if not found:
        raise NotFoundError(
            f"no invoice numbered `{number}`", "see `hosting invoice list` for the numbers"
        )
    return found[0]


def list_invoices(
    store_path: Path, tenant: str | None = None, status: str | None = None
) -> list[Invoice]:
    """Invoices in number order, optionally of one tenant and/or in one status."""
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status `{status}`", f"use one of {', '.join(STATUSES)}")
    clauses, params = [], []
    if tenant is not None:
        params.append(tenant)
        clauses.append(f"tenant = ${len(params)}")
    if status is not None:
        params.append(status)
        clauses.append(f"status = ${len(params)}")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with store.connect(store_path) as conn:
        if tenant is not None:
            _require_known(conn, tenant)
        return _read(conn, where, params)


def _require_known(conn: duckdb.DuckDBPyConnection, tenant: str) -> None:
    """A tenant billing has never heard of is a typo, not an empty list."""
    known = {
        r[0]
        for r in conn.execute(
            "SELECT tenant FROM subscriptions UNION SELECT tenant FROM billing_invoices"
        ).fetchall()
    }
    if tenant not in known:
        raise NotFoundError(
            f"unknown tenant `{tenant}`",
            f"tenants with a billing history: {', '.join(sorted(known)) or 'none yet'}",
        )


def mark(store_path: Path, number: str, status: str) -> Invoice:
    """Move an invoice to `status` if the transition is allowed; otherwise change nothing."""
    if status not in STATUSES:
        raise UsageError(f"unknown status `{status}`", f"use one of {', '.join(STATUSES)}")
    with store.connect(store_path) as conn:
        with store.transaction(conn):
            row = conn.execute(
                "SELECT status FROM billing_invoices WHERE invoice_number = $1", [number]
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"no invoice numbered `{number}`",
                    "see `hosting invoice list` for the numbers",
                )
            current = str(row[0])
            if status not in TRANSITIONS[current]:
                allowed = ", ".join(TRANSITIONS[current]) or "nothing (final)"
                raise BillingError(
                    f"invoice {number} is {current}; it cannot become {status}",
                    f"from {current} it can become: {allowed}",
                )
            now = utcnow()
            conn.execute(
                "UPDATE billing_invoices SET status = $1, updated_at = $2, "
                "paid_at = CASE WHEN $1 = 'paid' THEN $2 ELSE paid_at END "
                "WHERE invoice_number = $3",
                [status, now, number],
            )
        return _read(conn, "WHERE invoice_number = $1", [number])[0]
