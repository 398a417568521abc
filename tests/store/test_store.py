"""The DuckDB store: recorded migrations, and processes that share one file.

DuckDB lets one process hold the file for writing. The CLI, `meter import`, `invoice run`
and the agent open it briefly and wait, with back-off, while another process holds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
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
        assert "another hosting process" in str(info.value.hint)
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


# One process of the race below: for each fresh store in turn, wait for every other process
# to arrive (a barrier made of files, so no process starts early), then open that store from
# several threads at once, half of them read-only as the CLI's reads do, and use the newest
# migration's table. Prints the failures it saw as JSON.
RACE = """
import json, sys, threading, time
from pathlib import Path
from hosting.store import connect, migrations

index, processes, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
stores = [Path(p) for p in sys.argv[4:]]
newest = migrations()[-1][0]
failures = []

def use(store, read_only, barrier):
    barrier.wait()
    try:
        with connect(store, read_only=read_only) as conn:
            (count,) = conn.execute("SELECT count(*) FROM schema_migrations WHERE name = ?",
                                    [newest]).fetchone()
            if count != 1:
                failures.append(f"{store}: {newest} recorded {count} times")
    except Exception as exc:
        failures.append(f"{store}: {type(exc).__name__}: {exc}")

for store in stores:
    (store.parent / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while len(list(store.parent.glob("ready-*"))) < processes:
        if time.monotonic() > deadline:
            failures.append(f"{store}: the other processes never arrived")
            break
        time.sleep(0.001)
    barrier = threading.Barrier(threads)
    workers = [threading.Thread(target=use, args=(store, i % 2 == 1, barrier))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
print(json.dumps(failures))
"""


def test_a_fresh_store_opened_at_once_by_threads_and_processes_is_migrated_once(
    tmp_path: Path,
) -> None:
    """The agent and `meter import` on a new machine, each with threads, open it together."""
    rounds, processes, threads = 50, 2, 4
    stores = [tmp_path / f"round{r:02d}" / "hosting.duckdb" for r in range(rounds)]
    for store in stores:
        store.parent.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(i), str(processes), str(threads), *map(str, stores)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    failures = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        failures.extend(json.loads(out))
    assert failures == []
    expected = [name for name, _ in migrations()]
    for store in stores:
        with connect(store, read_only=True) as conn:
            names = conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        assert [n for (n,) in names] == expected, store


def test_threads_of_one_process_take_turns_at_the_file(tmp_path: Path) -> None:
    """Read, then write what was read: DuckDB lets two threads do it at once, and one fails."""
    path = tmp_path / "s.duckdb"
    with connect(path) as conn:
        conn.execute("CREATE TABLE counter (n INTEGER PRIMARY KEY)")
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def count_up() -> None:
        barrier.wait()
        for _ in range(5):
            try:
                with connect(path) as conn:
                    (top,) = conn.execute("SELECT coalesce(max(n), 0) FROM counter").fetchone()
                    conn.execute("INSERT INTO counter VALUES (?)", [top + 1])
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=count_up) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    with connect(path, read_only=True) as conn:
        assert conn.execute("SELECT count(*), max(n) FROM counter").fetchone() == (40, 40)


def test_a_read_inside_a_write_of_the_same_thread_reads_through_it(tmp_path: Path) -> None:
    """DuckDB refuses a read-only connection while this process has a read-write one."""
    path = tmp_path / "s.duckdb"
    with connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        with connect(path, read_only=True, wait=0.5) as inner:
            assert inner.execute("SELECT x FROM t").fetchall() == [(1,)]
