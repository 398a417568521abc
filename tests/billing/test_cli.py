"""The billing commands as a user runs them: real subprocesses on a real DuckDB file.

`invoice run` ten times and twice at once must leave exactly one invoice per tenant and period,
with the same numbers and amounts as a single run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.billing.helpers import GIB, add_bandwidth, add_storage, tenant, write_spec
from tests.conftest import REPO, run_hosting

AS_OF = "2025-09-30"
TENANTS = {
    "acme": tenant("starter", date(2025, 1, 31)),
    "globex": tenant("pro", date(2025, 2, 14), "yearly"),
    "initech": tenant("free", date(2025, 3, 1)),
    "umbrella": tenant("enterprise", date(2025, 5, 20)),
}
# Jan 31 → Sep 30: acme 8 periods (Feb 28 … Sep 30); globex Feb 14 → Sep 14: 7;
# initech Mar 1 → Sep 1: 6; umbrella May 20 → Sep 20: 4.
EXPECTED_COUNT = 8 + 7 + 6 + 4


def setup_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_spec(root / "hosting.yaml", TENANTS)
    db = root / ".hosting" / "hosting.duckdb"
    add_bandwidth(db, "acme", [(datetime(2025, 3, 5), 150 * GIB), (datetime(2025, 6, 1), GIB)])
    add_storage(db, "initech", [(datetime(2025, 4, 1), "blog", "static", 3 * GIB)])
    return root


def hosting(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_hosting(*args, cwd=root, env={"PYTHONPATH": str(REPO)})


def invoices_of(root: Path) -> list[tuple[Any, ...]]:
    out = hosting(root, "invoice", "list", "--json")
    assert out.returncode == 0, out.stderr
    return [
        (i["invoice_number"], i["tenant"], i["period_start"], i["period_end"], i["amount"])
        for i in json.loads(out.stdout)["invoices"]
    ]


def check_invariants(found: list[tuple[Any, ...]]) -> None:
    assert len(found) == EXPECTED_COUNT
    assert len({(t, start) for _, t, start, _, _ in found}) == len(found)
    assert [int(n[-6:]) for n, *_ in found] == list(range(1, len(found) + 1))


def test_invoice_run_ten_times_makes_each_invoice_once(tmp_path: Path) -> None:
    root = setup_dir(tmp_path / "seq")
    first = hosting(root, "invoice", "run", "--as-of", AS_OF, "--json")
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)["created"]
    assert len(created) == EXPECTED_COUNT
    baseline = invoices_of(root)
    check_invariants(baseline)
    for _ in range(9):
        again = hosting(root, "invoice", "run", "--as-of", AS_OF, "--json")
        assert again.returncode == 0, again.stderr
        doc = json.loads(again.stdout)
        assert doc["created"] == [] and doc["already_invoiced"] == EXPECTED_COUNT
    assert invoices_of(root) == baseline
    # acme Feb 28 → Mar 31: 150 GiB, over 50 × 0.05 = 2.50; 9.99 + 2.50 = 12.49.
    acme_march = [row for row in baseline if row[1] == "acme" and row[3].startswith("2025-03-31")]
    assert [row[4] for row in acme_march] == ["12.49"]
    # initech (free, 1 GB included) from Apr 1: 3 GB average, over 2 × 0.10 = 0.20.
    assert {row[4] for row in baseline if row[1] == "initech" and row[2] >= "2025-04"} == {"0.20"}


def test_two_concurrent_runs_make_each_invoice_once(tmp_path: Path) -> None:
    reference = setup_dir(tmp_path / "reference")
    assert hosting(reference, "invoice", "run", "--as-of", AS_OF).returncode == 0
    root = setup_dir(tmp_path / "concurrent")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "hosting", "invoice", "run", "--as-of", AS_OF, "--json"]
    procs = [
        subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    for _out, err, code in results:
        assert code == 0, err
    created = sorted(len(json.loads(out)["created"]) for out, _, _ in results)
    assert created == [0, EXPECTED_COUNT]
    found = invoices_of(root)
    check_invariants(found)
    # Same numbers and amounts as a single run elsewhere.
    assert found == invoices_of(reference)


def test_show_mark_and_json_shape(tmp_path: Path) -> None:
    root = setup_dir(tmp_path / "show")
    assert hosting(root, "invoice", "run", "--as-of", AS_OF, "--tenant", "acme").returncode == 0
    found = invoices_of(root)
    assert {row[1] for row in found} == {"acme"}
    number = found[0][0]
    shown = hosting(root, "invoice", "show", number, "--json")
    doc = json.loads(shown.stdout)
    for key in (
        "invoice_number",
        "tenant",
        "amount",
        "currency",
        "status",
        "period_start",
        "period_end",
        "base_cost",
        "storage_cost",
        "bandwidth_cost",
        "lines",
    ):
        assert key in doc
    assert (doc["amount"], doc["currency"], doc["status"]) == ("9.99", "USD", "pending")
    assert doc["period_start"] == "2025-01-31T00:00:00Z"
    assert [ln["kind"] for ln in doc["lines"]] == ["base", "storage", "bandwidth"]
    text = hosting(root, "invoice", "show", number)
    assert "Total: 9.99 USD" in text.stdout

    bad = hosting(root, "invoice", "mark", number, "refunded")
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"error: invoice {number} is pending; it cannot become refunded")
    assert "Traceback" not in bad.stderr
    assert json.loads(hosting(root, "invoice", "show", number, "--json").stdout)["status"] == (
        "pending"
    )
    ok = hosting(root, "invoice", "mark", number, "paid", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["paid_at"].endswith("Z")
    paid = hosting(root, "invoice", "list", "--status", "paid", "--json")
    assert [i["invoice_number"] for i in json.loads(paid.stdout)["invoices"]] == [number]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("usage", "nobody"), "error: unknown tenant `nobody`"),
        (("subscription", "nobody"), "error: unknown tenant `nobody`"),
        (("invoice", "run", "--tenant", "nobody"), "error: unknown tenant `nobody`"),
        (("invoice", "run", "--as-of", "2999-01-01"), "error: as-of date 2999-01-01 is in the"),
        (("subscription", "sync", "--as-of", "2999-01-01"), "error: as-of date 2999-01-01"),
        (("invoice", "show", "INV-20250101-000042"), "error: no invoice numbered"),
        (("invoice", "list", "--tenant", "nobody"), "error: unknown tenant `nobody`"),
        (("invoice", "mark", "INV-20250101-000042", "paid"), "error: no invoice numbered"),
    ],
)
def test_clear_errors_change_nothing(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    root = setup_dir(tmp_path / "err")
    out = hosting(root, *args)
    assert out.returncode == 1
    assert out.stderr.startswith(message), out.stderr
    assert "Traceback" not in out.stderr
    assert invoices_of(root) == []


def test_subscription_sync_usage_and_show(tmp_path: Path) -> None:
    root = setup_dir(tmp_path / "sub")
    out = hosting(root, "subscription", "sync", "--as-of", "2025-06-01", "--json")
    assert out.returncode == 0, out.stderr
    starts = {c["tenant"]: c["effective"] for c in json.loads(out.stdout)["changes"]}
    assert starts == {
        "acme": "2025-01-31",
        "globex": "2025-02-14",
        "initech": "2025-03-01",
        "umbrella": "2025-05-20",
    }
    tenants = {**TENANTS, "acme": tenant("pro", date(2025, 1, 31))}
    del tenants["initech"]
    write_spec(root / "hosting.yaml", tenants)
    out = hosting(root, "subscription", "sync", "--as-of", "2025-06-10")
    assert out.returncode == 0, out.stderr
    assert "acme: starter (monthly) → pro (monthly) from 2025-06-10" in out.stdout
    assert "initech: ends 2025-06-10" in out.stdout
    shown = json.loads(
        hosting(root, "subscription", "acme", "--as-of", "2025-06-12", "--json").stdout
    )
    assert (shown["plan"], shown["current_period_start"], shown["current_period_end"]) == (
        "pro",
        "2025-05-31",
        "2025-06-30",
    )
    assert [h["event"] for h in shown["history"]] == ["start", "change"]
    usage = json.loads(hosting(root, "usage", "acme", "--as-of", "2025-06-12", "--json").stdout)
    # May 31 → Jun 30 (30 days): starter 10 days 9.99×10/30 = 3.33; pro 20 days
    # 29.99×20/30 = 19.9933… → 19.99; acme's Jun 1 event: 1 GB of 500 included.
    assert usage["bandwidth_gb"] == "1.000000" and usage["bandwidth_included_gb"] == 500
    assert [ln["amount"] for ln in usage["projected_lines"] if ln["kind"] == "base"] == [
        "3.33",
        "19.99",
    ]
