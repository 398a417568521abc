"""The cost impact of a plan change, for `hosting plan` (pure core + a read-only store helper).

The impact is computed by the same schedule and pricing that invoices use, so a preview can
never disagree with the invoice that follows: the history as recorded, once as it is and once
with the change on the day, priced with no usage (usage does not depend on the plan, only
its included amounts do, and those are shown by `usage`).

- old_base: the base (and credit) lines of the running period without the change.
- new_base: with the change, the running period (pro-rated, or cut where a new yearly term
  starts) plus, when the change starts a new term, that term's first period (its yearly or
  monthly price and the credit for an old yearly term's unused days).
- delta = new_base − old_base: what the change adds to the next invoices' base charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hosting import store
from hosting.billing import schedule
from hosting.billing.money import ZERO
from hosting.billing.periods import add_months
from hosting.billing.pricing import Line, Usage, base_lines, total
from hosting.billing.schedule import HistoryRow, Period, Terms
from hosting.billing.subscriptions import check_as_of, load_history, terms_of
from hosting.spec.models import Plan, Spec

_NO_USAGE = Usage(Decimal(0), Decimal(0))


@dataclass(frozen=True)
class CostImpact:
    tenant: str
    change: str  # start | change | end | none
    effective: date
    old_plan: str | None
    old_cycle: str | None
    new_plan: str | None
    new_cycle: str | None
    period_start: date | None  # the running period (or, for a new tenant, its first)
    period_end: date | None
    old_base: Decimal
    new_base: Decimal
    delta: Decimal
    lines: tuple[Line, ...]  # the base/credit lines with the change
    note: str


def terms_from_plan(plan: Plan, cycle: str) -> Terms:
    return Terms(
        plan.name, cycle, plan.price_monthly, plan.price_yearly, plan.storage_gb, plan.bandwidth_gb
    )


def _base(periods: list[Period]) -> tuple[Decimal, tuple[Line, ...]]:
    lines = tuple(ln for p in periods for ln in base_lines(p))
    return total(list(lines)), lines


def cost_impact(tenant: str, rows: list[HistoryRow], new: Terms | None, as_of: date) -> CostImpact:
    """Impact of moving `tenant` (history `rows`) to `new` (None: removal) on `as_of`."""
    current = schedule.current_segment(rows)
    old = current.terms if current is not None else None
    if current is None:  # not subscribed (yet or any more): the change is a start
        if new is None:
            return _none(tenant, as_of, None)
        start = HistoryRow("new", tenant, 1, as_of, "start", new)
        first = schedule.periods(tenant, [start], until=as_of + timedelta(days=1))
        amount, lines = _base(first)
        return CostImpact(
            tenant,
            "start",
            as_of,
            None,
            None,
            new.plan,
            new.cycle,
            first[0].start,
            first[0].end,
            ZERO,
            amount,
            amount,
            lines,
            f"starts on {new.plan} ({new.cycle}) on {as_of}",
        )
    if new == old:
        return _none(tenant, as_of, old)
    assert old is not None
    until = add_months(as_of, 1) + timedelta(days=1)
    before = schedule.periods(tenant, rows, until=until)
    running = [p for p in before if p.start <= as_of < p.end]
    if not running:
        return _none(tenant, as_of, old)
    p0 = running[0]
    last = rows[-1]
    effective = max(as_of, current.start)
    row = HistoryRow(
        last.subscription_id,
        tenant,
        last.seq + 1,
        effective,
        "end" if new is None else "change",
        new,
    )
    after = schedule.periods(tenant, [*rows, row], until=until)
    touched = [p for p in after if p.start >= p0.start and p.start <= effective]
    old_base, _ = _base([p0])
    new_base, lines = _base(touched)
    if new is None:
        note = f"ends on {effective}: the running period is cut there"
    elif new.same_plan(old):
        note = f"{old.plan} ({old.cycle}) terms change on {effective}"
    elif schedule.YEARLY in (old.cycle, new.cycle):
        note = f"a new {new.cycle} term starts on {effective}"
        if old.cycle == schedule.YEARLY:
            note += ", the old yearly term's unused days are credited"
    else:
        days = (effective - p0.start).days
        note = f"pro-rated: {days} of {p0.days} days on {old.plan}, the rest on {new.plan}"
    return CostImpact(
        tenant,
        "end" if new is None else "change",
        effective,
        old.plan,
        old.cycle,
        new.plan if new else None,
        new.cycle if new else None,
        p0.start,
        p0.end,
        old_base,
        new_base,
        new_base - old_base,
        lines,
        note,
    )


def _none(tenant: str, as_of: date, terms: Terms | None) -> CostImpact:
    plan, cycle = (terms.plan, terms.cycle) if terms else (None, None)
    return CostImpact(
        tenant,
        "none",
        as_of,
        plan,
        cycle,
        plan,
        cycle,
        None,
        None,
        ZERO,
        ZERO,
        ZERO,
        (),
        "no change",
    )


def monthly_cost_impact(old: Terms, new: Terms, as_of: date, anchor: date) -> CostImpact:
    """Pure: a subscription on `old` since `anchor` (its term anchor) changing on `as_of`."""
    rows = [HistoryRow("sub", "tenant", 1, anchor, "start", old)]
    return cost_impact("tenant", rows, new, as_of)


def plan_impacts(store_path: Path, spec: Spec, as_of: date | None = None) -> list[CostImpact]:
    """Each tenant's impact if the file were synced on `as_of` (default today); records nothing.

    New tenants start on their `started` day; tenants gone from the file end on `as_of`.
    A missing store means nothing is recorded yet: every tenant is new.
    """
    day = check_as_of(as_of)
    history: dict[str, list[HistoryRow]] = {}
    if store_path.exists():
        with store.connect(store_path, read_only=True) as conn:
            history = load_history(conn)
    out = []
    for tid in sorted(set(spec.tenants) | set(history)):
        tenant = spec.tenants.get(tid)
        rows = history.get(tid, [])
        new = terms_of(spec, tenant) if tenant is not None else None
        when = tenant.started if tenant is not None and not rows else day
        out.append(cost_impact(tid, rows, new, when))
    return out
