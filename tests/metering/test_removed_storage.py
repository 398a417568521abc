"""A deployment removed from the file stops being billed for storage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from hosting.metering.engine import Engine
from hosting.metering.storage import storage_cycle
from hosting.spec import load
from hosting.store import connect
from tests.metering.helpers import write_spec

pytestmark = pytest.mark.docker


def test_removed_deployment_is_measured_at_zero_once(docker_engine: str, tmp_path: Path) -> None:
    spec_file = write_spec(tmp_path, {"acme": {"site": {"type": "web", "static": "./public"}}})
    (tmp_path / "public").mkdir()
    store = tmp_path / "s.duckdb"
    with connect(store) as conn:
        conn.execute(
            "INSERT INTO deployment_storage VALUES"
            " ('e1', 'acme', 'gone', 'database', 5368709120, NULL, '2026-11-01 00:00:00'),"
            " ('e2', 'acme', 'gone', 'logs', 1000, NULL, '2026-11-01 00:00:00'),"
            " ('e3', 'acme', 'old', 'code', 0, NULL, '2026-11-01 00:00:00')"
        )
    now = datetime(2026, 11, 10, 12, 0)
    result = storage_cycle(store, Engine(), load(spec_file), spec_dir=tmp_path, now=now)
    zeroed = {
        (s.deployment, s.storage_type, s.size_bytes)
        for s in result.measured
        if s.size_bytes == 0 and s.deployment != "site"
    }
    assert zeroed == {("gone", "database", 0), ("gone", "logs", 0)}
    # The next cycle has nothing left to zero: the series already ends at 0.
    later = storage_cycle(
        store, Engine(), load(spec_file), spec_dir=tmp_path, now=datetime(2026, 11, 10, 13, 0)
    )
    assert not [s for s in later.measured if s.deployment in ("gone", "old")]
