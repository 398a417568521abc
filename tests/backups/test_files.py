"""The backup folder without Docker: listing ignores partials, retention, restore's checks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from hosting.backups import list_backups, restore
from hosting.backups.files import deployment_dir, prune, resolve, stamp
from hosting.errors import NotFoundError, UsageError
from hosting.metering.agent import Agent, AgentConfig
from hosting.spec import load
from tests.metering.helpers import write_spec


def _dump(folder: Path, name: str, body: bytes = b"PGDMP-not-really") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    return path


def test_partials_are_never_listed_and_retention_keeps_the_newest(tmp_path: Path) -> None:
    folder = deployment_dir(tmp_path, "acme", "db")
    names = [f"2026010{i}T000000.000Z.dump" for i in range(1, 6)]
    for name in reversed(names):  # creation order must not matter, the names do
        _dump(folder, name)
        (folder / name).with_suffix(".json").write_text("{}")
    fresh = _dump(folder, ".20260106T000000.000Z.dump.partial")
    stale = _dump(folder, ".20251231T000000.000Z.dump.partial")
    os.utime(stale, (time.time() - 7 * 3600,) * 2)
    assert [b.name for b in list_backups(tmp_path)] == names
    removed = prune(folder, 2)
    assert removed == names[:3]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [names[3], names[4], names[3].replace(".dump", ".json"), names[4].replace(".dump", ".json")]
    )
    assert fresh.exists() and not stale.exists()  # a running backup's partial is left alone
    with pytest.raises(UsageError):
        prune(folder, 0)


def test_stamps_sort_in_time_order() -> None:
    from datetime import datetime

    a, b = datetime(2026, 1, 2, 3, 4, 5, 6000), datetime(2026, 1, 2, 3, 4, 5, 7000)
    assert stamp(a) == "20260102T030405.006Z" and stamp(a) < stamp(b)


def test_restore_refuses_without_yes_a_foreign_file_and_a_damaged_one(tmp_path: Path) -> None:
    spec = load(write_spec(tmp_path, {"acme": {"db": {"type": "database"}}}))
    folder = deployment_dir(tmp_path, "acme", "db")
    good = _dump(folder, "20260101T000000.000Z.dump")
    with pytest.raises(UsageError, match="replaces the current contents of acme/db") as refused:
        restore(spec, tmp_path, "acme", "db", good.name, confirmed=False)
    assert refused.value.hint is not None and "--yes" in refused.value.hint
    other = _dump(tmp_path, "notes.txt", b"hello")
    with pytest.raises(UsageError, match="not a pg_dump custom-format file"):
        restore(spec, tmp_path, "acme", "db", str(other), confirmed=True)
    good.with_suffix(".json").write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(UsageError, match="does not match the checksum"):
        restore(spec, tmp_path, "acme", "db", "20260101T000000.000Z", confirmed=True)
    with pytest.raises(NotFoundError):
        restore(spec, tmp_path, "acme", "db", "nothing-here.dump", confirmed=True)
    newer = _dump(folder, "20260102T000000.000Z.dump", b"not a dump")
    assert resolve(tmp_path, "acme", "db", "latest") == newer
    with pytest.raises(UsageError, match="not a pg_dump"):  # latest is the newer one
        restore(spec, tmp_path, "acme", "db", "latest", confirmed=True)
    with pytest.raises(NotFoundError):
        restore(spec, tmp_path, "acme", "nope", good.name, confirmed=True)


def test_the_agent_schedules_the_next_backup_from_the_newest_on_disk(tmp_path: Path) -> None:
    spec = load(write_spec(tmp_path, {"acme": {"db": {"type": "database"}}}))
    config = AgentConfig(backup_interval=1000.0)
    agent = Agent(spec, tmp_path / "hosting.duckdb", spec_dir=tmp_path, config=config)
    assert agent._backups_first_due(50.0) == 50.0  # never backed up: due now
    made = _dump(deployment_dir(tmp_path, "acme", "db"), "20260101T000000.000Z.dump")
    os.utime(made, (time.time() - 400,) * 2)
    due = agent._backups_first_due(50.0)
    assert 50.0 + 590 <= due <= 50.0 + 600  # 1000 s after it, 400 s of which are gone
