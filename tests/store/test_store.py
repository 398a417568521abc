"""The DuckDB store: recorded migrations, and processes that share one file.

DuckDB lets one process hold the file for writing. The CLI, `meter import`, `invoice run`
and the agent open it briefly and wait, with back-off, while another process holds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hosting.errors import StoreError
from hosting.store import connect, migrations
from tests.conftest import run_hosting

HOLD = """
import sys, time
from pathlib import Path
from hosting.store import connect
with connect(Path(sys.argv[1])) as conn:
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with connect(path) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        ]
    assert names == [name for name, _ in migrations()]
    assert names[0] == "0001_usage" and len(names) >= 4
    with connect(path) as conn:  # a second open applies nothing twice
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert count == (len(names),)


def test_a_second_process_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with connect(path):
        pass
    holder = _hold(path, 1.5)
    started = time.monotonic()
    with connect(path, wait=30) as conn:
        waited = time.monotonic() - started
        conn.execute("SELECT 1")
    holder.communicate(timeout=30)
    assert holder.returncode == 0
    assert waited >= 0.5, "it should have waited for the holder to let go"


def test_waiting_is_bounded_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with connect(path):
        pass
    holder = _hold(path, 5)
    try:
        with pytest.raises(StoreError) as info, connect(path, wait=0.3):
            pass
        assert "another hosting process holds it" in str(info.value.hint)
    finally:
        holder.kill()
        holder.communicate()


def test_import_invoice_run_and_reads_coexist(tmp_path: Path) -> None:
    (tmp_path / "hosting.yaml").write_text(
        "version: 1\nplatform: {name: st, domain: apps.localhost, public_ipv4: 127.0.0.1}\n"
        "tenants:\n  acme:\n    name: Acme\n    email: a@acme.test\n    plan: starter\n"
        "    started: 2026-01-03\n    deployments:\n      shop: {type: web, image: x, port: 80}\n"
    )
    events = tmp_path / "events.jsonl"
    with events.open("w") as fh:
        for i in range(60_000):
            minute = i % (60 * 24 * 20)  # 2026-02-03 … 2026-02-22
            stamp = (
                f"2026-02-{3 + minute // 1440:02d}T{minute % 1440 // 60:02d}:{minute % 60:02d}:00Z"
            )
            fh.write(json.dumps({"id": f"e{i}", "deployment": "acme/shop", "time": stamp,
                                 "metric": "bandwidth_out", "value": 1000}) + "\n")  # fmt: skip
    commands = [
        ["meter", "import", str(events)],
        ["invoice", "run", "--as-of", "2026-03-03"],
        ["storage", "acme"],
        ["invoice", "list"],
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hosting", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    for args, proc in zip(commands, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (args, err)
    listed = run_hosting("invoice", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    numbers = [i["invoice_number"] for i in json.loads(listed.stdout)["invoices"]]
    assert numbers[:1] == ["INV-20260203-000001"]  # one per ended period, never twice
    assert len(numbers) == len(set(numbers))
