"""Snapshots: checksums a stock `sha256sum -c` accepts, retention, and restores that refuse
what they cannot trust."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.engine import Engine
from hosting.spec import load
from tests.store.helpers import hosting, ok, one_clean_error, write_spec

HOLD = """
import sys, time
from pathlib import Path
from hosting.store import connect
with connect(Path(sys.argv[1])) as conn:
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _site(tmp_path: Path) -> tuple[Path, Path]:
    root = write_spec(tmp_path / "site")
    ok(hosting(root, "invoice", "run", "--as-of", "2026-03-03"))
    return root, root / ".hosting" / "hosting.duckdb"


def test_snapshots_carry_checksums_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    root, store = _site(tmp_path)
    for _ in range(3):
        ok(hosting(root, "store", "snapshot", "--keep", "2"))
    folder = store.parent / "backups" / "_store"
    kept = sorted(folder.glob("hosting-*.duckdb"))
    assert len(kept) == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in kept] + [p.name + ".sha256" for p in kept]
    )
    for snap in kept:
        digest = hashlib.sha256(snap.read_bytes()).hexdigest()
        assert (folder / (snap.name + ".sha256")).read_text() == f"{digest}  {snap.name}\n"
    checked = subprocess.run(
        ["sha256sum", "-c", *[p.name + ".sha256" for p in kept]],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = ok(hosting(root, "store", "list"))
    assert [p.name in listed for p in kept] == [True, True]


def test_restore_refuses_a_snapshot_that_fails_its_checksum(tmp_path: Path) -> None:
    root, store = _site(tmp_path)
    ok(hosting(root, "store", "snapshot"))
    (snap,) = (store.parent / "backups" / "_store").glob("hosting-*.duckdb")
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    before = store.read_bytes()
    line = one_clean_error(hosting(root, "store", "restore", snap.name, "--yes"))
    assert "does not match its checksum" in line, line
    assert store.read_bytes() == before
    assert [p.name for p in store.parent.iterdir() if ".damaged-" in p.name] == []


def test_restore_refuses_while_another_process_holds_the_store(tmp_path: Path) -> None:
    root, store = _site(tmp_path)
    ok(hosting(root, "store", "snapshot"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store), "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        line = one_clean_error(hosting(root, "store", "restore", "latest", "--yes"))
        assert "another process has it open" in line, line
    finally:
        holder.kill()
        holder.communicate()
    assert [p.name for p in store.parent.iterdir() if ".damaged-" in p.name] == []


def test_the_agent_snapshots_when_due_and_not_again_until_the_interval_passes(
    tmp_path: Path,
) -> None:
    root, store = _site(tmp_path)
    agent = Agent(
        load(root / "hosting.yaml"), store, spec_dir=root,
        config=AgentConfig(snapshot_interval=86400.0, snapshot_keep=3),
        engine=Engine(f"unix://{root}/no-docker.sock"),
    )  # fmt: skip
    first = agent.run_due_snapshot()
    assert first is not None and first.ok, first
    (snap,) = (store.parent / "backups" / "_store").glob("hosting-*.duckdb")
    assert first.summary["snapshot"] == str(snap)
    again = agent.run_due_snapshot()
    assert again is not None and again.ok and again.summary == {"due": False}
    assert len(list((store.parent / "backups" / "_store").glob("hosting-*.duckdb"))) == 1
    off = Agent(
        load(root / "hosting.yaml"), store, spec_dir=root,
        config=AgentConfig(snapshot_interval=0), engine=Engine(f"unix://{root}/no-docker.sock"),
    )  # fmt: skip
    assert off.run_due_snapshot() is None
