"""A full state directory, made real: a tmpfs of a fixed size mounted as the state directory.

Writes fail with a clear error; `invoice run` writes no partial invoice and consumes no
number; a snapshot leaves no partial file; the agent keeps running and retries. Mounting
needs root: CI runs as root and must run these; elsewhere they skip and say why.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.engine import Engine
from hosting.spec import load
from tests.conftest import require
from tests.store.helpers import hosting, ok, one_clean_error, write_spec

pytestmark = pytest.mark.root

SIZE = "24m"  # room for the store and a snapshot of it, before the filler takes the rest


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    require(os.geteuid() == 0, "root (to mount a fixed-size tmpfs as the state directory)")
    mount = tmp_path / "state"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem refuses another byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler


def _numbers(root: Path, state: Path) -> list[str]:
    listed = json.loads(ok(hosting(root, "invoice", "list", "--json", state_dir=state)))
    return [i["invoice_number"] for i in listed["invoices"]]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if "partial" in p.name]


def test_invoice_run_on_a_full_disk_writes_nothing_and_takes_no_number(
    tmp_path: Path, small_fs: Path
) -> None:
    root, state = write_spec(tmp_path / "site"), small_fs
    assert ok(hosting(root, "invoice", "run", "--as-of", "2026-02-20", state_dir=state)).startswith(
        "2 invoice(s) created"
    )
    filler = fill(state)

    line = one_clean_error(
        hosting(root, "invoice", "run", "--as-of", "2026-04-20", state_dir=state)
    )
    assert "no space left on device" in line and str(state) in line, line
    check = hosting(root, "store", "check", state_dir=state)
    assert check.returncode == 0, (check.stdout, check.stderr)
    assert "1–2 gapless (2 invoices, counter at 2)" in check.stdout, check.stdout
    assert _numbers(root, state) == ["INV-20260203-000001", "INV-20260220-000002"]

    line = one_clean_error(hosting(root, "store", "snapshot", state_dir=state))
    assert "no space left on device" in line, line
    snapshots = state / "backups" / "_store"
    assert not snapshots.exists() or list(snapshots.iterdir()) == []
    assert _partials(state) == []

    filler.unlink()
    created = ok(hosting(root, "invoice", "run", "--as-of", "2026-04-20", state_dir=state))
    assert created.startswith("4 invoice(s) created"), created
    assert _numbers(root, state) == [
        "INV-20260203-000001",
        "INV-20260220-000002",
        "INV-20260303-000003",
        "INV-20260320-000004",
        "INV-20260403-000005",
        "INV-20260420-000006",
    ]
    assert "1–6 gapless" in ok(hosting(root, "store", "check", state_dir=state))


def _wait_for(condition: object, what: str, seconds: float = 120.0) -> None:
    """Wait for a condition, bounded so a broken agent fails the test instead of hanging it."""
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_the_agent_keeps_running_on_a_full_disk_and_snapshots_once_there_is_room(
    tmp_path: Path, small_fs: Path
) -> None:
    root, state = write_spec(tmp_path / "site"), small_fs
    ok(hosting(root, "invoice", "run", "--as-of", "2026-02-20", state_dir=state))
    filler = fill(state)
    hour = 3600.0
    config = AgentConfig(
        metrics_interval=hour,
        health_interval=hour,
        storage_interval=hour,
        domains_interval=hour,
        backup_interval=0,
        snapshot_interval=0.2,
    )
    lines: list[str] = []
    agent = Agent(
        load(root / "hosting.yaml"), state / "hosting.duckdb", spec_dir=root, config=config,
        engine=Engine(f"unix://{root}/no-docker.sock"), log_file=state / "logs" / "agent.log",
        echo=lines.append,
    )  # fmt: skip
    stop, crashed = threading.Event(), []

    def run() -> None:
        try:
            agent.run(stop)
        except BaseException as exc:  # the test's point: nothing may end the loop
            crashed.append(exc)

    def snapshot_failures() -> list[dict[str, str]]:
        events = [json.loads(line) for line in list(lines)]
        return [e for e in events if e["event"] == "job_failed" and e.get("job") == "snapshot"]

    worker = threading.Thread(target=run)
    worker.start()
    try:
        _wait_for(lambda: len(snapshot_failures()) >= 2, "two failed snapshot attempts")
        assert all("no space left on device" in e["error"] for e in snapshot_failures())
        assert _partials(state) == []
        filler.unlink()
        _wait_for(
            lambda: list((state / "backups" / "_store").glob("hosting-*.duckdb")), "a snapshot"
        )
    finally:
        stop.set()
        worker.join(timeout=120)
    assert not worker.is_alive() and crashed == []
    taken = list((state / "backups" / "_store").glob("hosting-*.duckdb"))
    assert all((t.parent / (t.name + ".sha256")).is_file() for t in taken)
    assert _partials(state) == []
