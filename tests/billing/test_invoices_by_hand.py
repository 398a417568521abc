"""Invoices worked out by hand (SPEC §3), end to end through a real DuckDB store.

Each case records a subscription history with `subscription sync` on the dates given, puts
usage in with plain INSERTs, runs `invoice run` and compares one invoice's lines and total
with the amounts computed by hand in the comments. GiB = 2^30 bytes. "→" marks the rounding
to cents, half up. Periods are [start, end): the end day belongs to the next period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hosting.billing import invoices, subscriptions
from tests.billing.helpers import GIB, add_bandwidth, add_storage, make_spec, tenant

D = date
T = datetime


@dataclass
class Case:
    id: str
    start: dict[str, Any]
    period: tuple[date, date]
    lines: list[tuple[str, str]]  # (kind, amount) in invoice order
    total: str
    steps: list[tuple[date, dict[str, Any] | None]] = field(default_factory=list)
    bandwidth: list[tuple[datetime, int | None]] = field(default_factory=list)
    storage: list[tuple[datetime, str, str, int]] = field(default_factory=list)
    as_of: date | None = None  # default: the period's end


def zero(*lines: tuple[str, str]) -> list[tuple[str, str]]:
    return [*lines, ("storage", "0.00"), ("bandwidth", "0.00")]


CASES = [
    # free, monthly, nothing used: 0.00 × 31/31 = 0.00; storage and bandwidth 0.
    Case(
        "free-zero-usage",
        tenant("free", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        zero(("base", "0.00")),
        "0.00",
    ),
    # starter, monthly, full period Mar 1 → Apr 1: 9.99.
    Case(
        "starter-monthly",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        zero(("base", "9.99")),
        "9.99",
    ),
    # pro, monthly, Apr 10 → May 10: 29.99.
    Case(
        "pro-monthly",
        tenant("pro", D(2025, 4, 10)),
        (D(2025, 4, 10), D(2025, 5, 10)),
        zero(("base", "29.99")),
        "29.99",
    ),
    # enterprise, monthly, May 5 → Jun 5: 99.99.
    Case(
        "enterprise-monthly",
        tenant("enterprise", D(2025, 5, 5)),
        (D(2025, 5, 5), D(2025, 6, 5)),
        zero(("base", "99.99")),
        "99.99",
    ),
    # starter, yearly: the period that starts on the anniversary (the start) carries 99.90.
    Case(
        "starter-yearly-first",
        tenant("starter", D(2025, 1, 15), "yearly"),
        (D(2025, 1, 15), D(2025, 2, 15)),
        zero(("base", "99.90")),
        "99.90",
    ),
    # starter, yearly: the second period has no base line at all: 0.00.
    Case(
        "starter-yearly-second",
        tenant("starter", D(2025, 1, 15), "yearly"),
        (D(2025, 2, 15), D(2025, 3, 15)),
        zero(),
        "0.00",
    ),
    # pro, yearly from 2024-06-01: the 13th period starts on the anniversary: 299.90.
    Case(
        "pro-yearly-anniversary",
        tenant("pro", D(2024, 6, 1), "yearly"),
        (D(2025, 6, 1), D(2025, 7, 1)),
        zero(("base", "299.90")),
        "299.90",
    ),
    # 25 GiB measured Feb 20 carries into Mar 1 → Apr 1: average 25, included 10,
    # over 15 × 0.10 = 1.50; 9.99 + 1.50 = 11.49.
    Case(
        "storage-carried-into-period",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        [("base", "9.99"), ("storage", "1.50"), ("bandwidth", "0.00")],
        "11.49",
        storage=[(T(2025, 2, 20), "web", "code", 25 * GIB)],
    ),
    # Apr 1 → May 1 (30 days): 15 GiB for 20 days, then 40 GiB for 10 days:
    # (15×20 + 40×10) / 30 = 700/30 = 23.333… GiB; over 13.333… × 0.10 = 1.3333 → 1.33;
    # 9.99 + 1.33 = 11.32.
    Case(
        "storage-time-weighted",
        tenant("starter", D(2025, 4, 1)),
        (D(2025, 4, 1), D(2025, 5, 1)),
        [("base", "9.99"), ("storage", "1.33"), ("bandwidth", "0.00")],
        "11.32",
        storage=[
            (T(2025, 4, 1), "web", "code", 15 * GIB),
            (T(2025, 4, 21), "web", "code", 40 * GIB),
        ],
    ),
    # pro, Jun 1 → Jul 1 (30 days): main/database 40 GiB all along (measured May 1);
    # web/static 30 GiB from Jun 16 (0 before its first measurement) = 15 days:
    # (40×30 + 30×15) / 30 = 1650/30 = 55 GiB; over 55 − 50 = 5 × 0.10 = 0.50;
    # 29.99 + 0.50 = 30.49.
    Case(
        "storage-sum-of-deployments-and-types",
        tenant("pro", D(2025, 6, 1)),
        (D(2025, 6, 1), D(2025, 7, 1)),
        [("base", "29.99"), ("storage", "0.50"), ("bandwidth", "0.00")],
        "30.49",
        storage=[
            (T(2025, 5, 1), "main", "database", 40 * GIB),
            (T(2025, 6, 16), "web", "static", 30 * GIB),
        ],
    ),
    # Storage exactly at the limit: 10 GiB average, 10 included: over max(0, 0) = 0.00.
    Case(
        "storage-exactly-at-limit",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        zero(("base", "9.99")),
        "9.99",
        storage=[
            (T(2025, 3, 1), "web", "code", 10 * GIB),
            (T(2025, 3, 15), "web", "code", 10 * GIB),
        ],
    ),
    # Bandwidth 60 + 60 + 30.5 = 150.5 GiB, included 100: over 50.5 × 0.05 = 2.525
    # → 2.53 half up (half-even would give 2.52); 9.99 + 2.53 = 12.52.
    Case(
        "bandwidth-overage-half-up",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        [("base", "9.99"), ("storage", "0.00"), ("bandwidth", "2.53")],
        "12.52",
        bandwidth=[
            (T(2025, 3, 2), 60 * GIB),
            (T(2025, 3, 10), 60 * GIB),
            (T(2025, 3, 20), 61 * GIB // 2),
        ],
    ),
    # Bandwidth exactly at the limit: 50 + 50 = 100 GiB (a row with NULL bandwidth_out, from
    # a cpu event, counts as nothing): over 0 → 0.00.
    Case(
        "bandwidth-exactly-at-limit",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        zero(("base", "9.99")),
        "9.99",
        bandwidth=[(T(2025, 3, 5), 50 * GIB), (T(2025, 3, 6), None), (T(2025, 3, 25), 50 * GIB)],
    ),
    # An event at exactly Apr 1 00:00 belongs to Apr 1 → May 1; one at exactly May 1 00:00
    # does not. 110 GiB, over 10 × 0.05 = 0.50; 9.99 + 0.50 = 10.49.
    Case(
        "event-on-period-start-counts",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 4, 1), D(2025, 5, 1)),
        [("base", "9.99"), ("storage", "0.00"), ("bandwidth", "0.50")],
        "10.49",
        bandwidth=[(T(2025, 4, 1), 110 * GIB), (T(2025, 5, 1), 500 * GIB)],
    ),
    # Same data, next period May 1 → Jun 1: the May 1 00:00 event: 500 GiB, over 400 × 0.05
    # = 20.00. A 100 GiB storage measurement at exactly Jun 1 00:00 holds from Jun 1 on: 0
    # in this period. 9.99 + 20.00 = 29.99.
    Case(
        "event-on-period-end-goes-to-next",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 5, 1), D(2025, 6, 1)),
        [("base", "9.99"), ("storage", "0.00"), ("bandwidth", "20.00")],
        "29.99",
        bandwidth=[(T(2025, 4, 1), 110 * GIB), (T(2025, 5, 1), 500 * GIB)],
        storage=[(T(2025, 6, 1), "web", "code", 100 * GIB)],
    ),
    # Anchor on the 31st: Jan 31 → Feb 28 (2025 is not a leap year): 9.99.
    Case(
        "anchor-31st-into-february",
        tenant("starter", D(2025, 1, 31)),
        (D(2025, 1, 31), D(2025, 2, 28)),
        zero(("base", "9.99")),
        "9.99",
    ),
    # …and back to the 31st: Feb 28 → Mar 31 (not Mar 28): 9.99.
    Case(
        "anchor-31st-after-february",
        tenant("starter", D(2025, 1, 31)),
        (D(2025, 2, 28), D(2025, 3, 31)),
        zero(("base", "9.99")),
        "9.99",
    ),
    # Leap year, anchor 2024-01-31: Jan 31 → Feb 29 (29 days). Upgrade to pro on Feb 10
    # (the change day belongs to the new plan): starter Jan 31 – Feb 9 = 10 days:
    # 9.99 × 10/29 = 99.90/29 = 3.44482… → 3.44; pro Feb 10 – Feb 28 = 19 days:
    # 29.99 × 19/29 = 569.81/29 = 19.64862… → 19.65; 3.44 + 19.65 = 23.09.
    Case(
        "anchor-31st-leap-february-upgrade",
        tenant("starter", D(2024, 1, 31)),
        (D(2024, 1, 31), D(2024, 2, 29)),
        zero(("base", "3.44"), ("base", "19.65")),
        "23.09",
        steps=[(D(2024, 2, 10), tenant("pro", D(2024, 1, 31)))],
    ),
    # …and the next period Feb 29 → Mar 31 is a full pro month: 29.99.
    Case(
        "anchor-31st-leap-after-february",
        tenant("starter", D(2024, 1, 31)),
        (D(2024, 2, 29), D(2024, 3, 31)),
        zero(("base", "29.99")),
        "29.99",
        steps=[(D(2024, 2, 10), tenant("pro", D(2024, 1, 31)))],
    ),
    # Mid-period upgrade: Mar 5 → Apr 5 (31 days), starter → pro on Mar 20.
    # starter Mar 5–19 = 15 days: 9.99 × 15/31 = 149.85/31 = 4.83387… → 4.83;
    # pro Mar 20 – Apr 4 = 16 days: 29.99 × 16/31 = 479.84/31 = 15.47870… → 15.48.
    # Storage 30 GiB all period; included from the plan on the last day (pro, 50): 0.00.
    # 4.83 + 15.48 = 20.31.
    Case(
        "mid-period-upgrade",
        tenant("starter", D(2025, 3, 5)),
        (D(2025, 3, 5), D(2025, 4, 5)),
        zero(("base", "4.83"), ("base", "15.48")),
        "20.31",
        steps=[(D(2025, 3, 20), tenant("pro", D(2025, 3, 5)))],
        storage=[(T(2025, 3, 1), "db", "database", 30 * GIB)],
    ),
    # Mid-period downgrade: May 1 → Jun 1 (31 days), pro → starter on May 11.
    # pro May 1–10 = 10 days: 29.99 × 10/31 = 299.90/31 = 9.67419… → 9.67;
    # starter May 11–31 = 21 days: 9.99 × 21/31 = 209.79/31 = 6.76741… → 6.77.
    # Storage 30 GiB, included on the last day: starter's 10: over 20 × 0.10 = 2.00.
    # 9.67 + 6.77 + 2.00 = 18.44.
    Case(
        "mid-period-downgrade",
        tenant("pro", D(2025, 5, 1)),
        (D(2025, 5, 1), D(2025, 6, 1)),
        [("base", "9.67"), ("base", "6.77"), ("storage", "2.00"), ("bandwidth", "0.00")],
        "18.44",
        steps=[(D(2025, 5, 11), tenant("starter", D(2025, 5, 1)))],
        storage=[(T(2025, 4, 1), "db", "database", 30 * GIB)],
    ),
    # Tenant removed on Jun 13: the period Jun 1 → Jul 1 (30 days) is cut at Jun 13 and
    # invoiced then (number dated 20250613). Base 12 days: 9.99 × 12/30 = 119.88/30 = 3.996
    # → 4.00. Bandwidth 130 GiB: over 30 × 0.05 = 1.50. Storage 20 GiB held 12 days:
    # 20 × 12 / 30 = 8 GiB average (days after the end count as 0) ≤ 10: 0.00.
    # 4.00 + 1.50 = 5.50.
    Case(
        "tenant-removed-mid-period",
        tenant("starter", D(2025, 6, 1)),
        (D(2025, 6, 1), D(2025, 6, 13)),
        [("base", "4.00"), ("storage", "0.00"), ("bandwidth", "1.50")],
        "5.50",
        steps=[(D(2025, 6, 13), None)],
        bandwidth=[(T(2025, 6, 5), 130 * GIB)],
        storage=[(T(2025, 5, 1), "web", "code", 20 * GIB)],
    ),
    # Yearly upgrade starter → pro on 2025-03-10: a new yearly term starts that day (new
    # anchor). Its first period Mar 10 → Apr 10 charges pro yearly 299.90 and credits the
    # old term 2025-01-01 → 2026-01-01 (365 days): unused Mar 10 → Jan 1 = 22 + 275 = 297
    # days: 99.90 × 297/365 = 29670.30/365 = 81.28849… → −81.29. 299.90 − 81.29 = 218.61.
    Case(
        "yearly-upgrade-with-credit",
        tenant("starter", D(2025, 1, 1), "yearly"),
        (D(2025, 3, 10), D(2025, 4, 10)),
        zero(("base", "299.90"), ("credit", "-81.29")),
        "218.61",
        steps=[(D(2025, 3, 10), tenant("pro", D(2025, 1, 1), "yearly"))],
    ),
    # …and the old period Mar 1 → Apr 1 is cut at Mar 10: a yearly plan outside its
    # anniversary period has no base line: 0.00.
    Case(
        "yearly-period-cut-by-new-term",
        tenant("starter", D(2025, 1, 1), "yearly"),
        (D(2025, 3, 1), D(2025, 3, 10)),
        zero(),
        "0.00",
        steps=[(D(2025, 3, 10), tenant("pro", D(2025, 1, 1), "yearly"))],
    ),
    # Yearly pro from 2024-02-01 (term to 2025-02-01: 366 days, it holds Feb 29) → starter
    # monthly on 2024-11-16 (new anchor). Period Nov 16 → Dec 16: starter 9.99 and a credit
    # for Nov 16 → Feb 1 = 15 + 31 + 31 = 77 unused days: 299.90 × 77/366 = 23092.30/366
    # = 63.09371… → −63.09. 9.99 − 63.09 = −53.10 (a credit note).
    Case(
        "yearly-to-monthly-downgrade-credit",
        tenant("pro", D(2024, 2, 1), "yearly"),
        (D(2024, 11, 16), D(2024, 12, 16)),
        zero(("base", "9.99"), ("credit", "-63.09")),
        "-53.10",
        steps=[(D(2024, 11, 16), tenant("starter", D(2024, 2, 1)))],
    ),
    # Monthly → yearly on 2025-02-05 (new anchor): the period Jan 20 → Feb 20 (31 days) is
    # cut at Feb 5; starter monthly Jan 20 – Feb 4 = 16 days: 9.99 × 16/31 = 159.84/31 =
    # 5.15612… → 5.16.
    Case(
        "monthly-to-yearly-cut-period",
        tenant("starter", D(2025, 1, 20)),
        (D(2025, 1, 20), D(2025, 2, 5)),
        zero(("base", "5.16")),
        "5.16",
        steps=[(D(2025, 2, 5), tenant("starter", D(2025, 1, 20), "yearly"))],
    ),
    # …and the new yearly term's first period Feb 5 → Mar 5: 99.90 (no credit: the old
    # cycle was monthly).
    Case(
        "monthly-to-yearly-new-term",
        tenant("starter", D(2025, 1, 20)),
        (D(2025, 2, 5), D(2025, 3, 5)),
        zero(("base", "99.90")),
        "99.90",
        steps=[(D(2025, 2, 5), tenant("starter", D(2025, 1, 20), "yearly"))],
    ),
    # Half up, not half even: 10.25 GiB average, over 0.25 × 0.10 = 0.025 → 0.03 (half-even:
    # 0.02). 9.99 + 0.03 = 10.02.
    Case(
        "storage-half-up-not-half-even",
        tenant("starter", D(2025, 3, 1)),
        (D(2025, 3, 1), D(2025, 4, 1)),
        [("base", "9.99"), ("storage", "0.03"), ("bandwidth", "0.00")],
        "10.02",
        storage=[(T(2025, 2, 1), "web", "code", 41 * GIB // 4)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invoice_worked_by_hand(case: Case, tmp_path: Path) -> None:
    db = tmp_path / "hosting.duckdb"
    tid = "acme"
    started = date.fromisoformat(case.start["started"])
    spec = make_spec({tid: case.start})
    subscriptions.sync(db, spec, started)
    for day, fields in case.steps:
        spec = make_spec({tid: fields} if fields is not None else {})
        subscriptions.sync(db, spec, day)
    if case.bandwidth:
        add_bandwidth(db, tid, case.bandwidth)
    if case.storage:
        add_storage(db, tid, case.storage)

    invoices.run(db, spec, case.as_of or case.period[1])

    found = [i for i in invoices.list_invoices(db, tid) if i.period_start.date() == case.period[0]]
    assert len(found) == 1, [(i.period_start, i.period_end) for i in invoices.list_invoices(db)]
    inv = found[0]
    assert inv.period_end.date() == case.period[1]
    assert re.fullmatch(rf"INV-{case.period[1]:%Y%m%d}-\d{{6}}", inv.invoice_number)
    assert [(ln.kind, str(ln.amount)) for ln in inv.lines] == case.lines
    assert str(inv.amount) == case.total
    assert inv.currency == "USD" and inv.status == "pending"
    base = sum((Decimal(a) for k, a in case.lines if k in ("base", "credit")), Decimal("0.00"))
    assert inv.base_cost == base
    assert inv.storage_cost == Decimal(dict(case.lines)["storage"])
    assert inv.bandwidth_cost == Decimal(dict(case.lines)["bandwidth"])
