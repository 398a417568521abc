"""A point-in-time restore of a database with a read replica, through the real engine: the
replica is cloned again from the restored primary, so `${main.read_url}` serves the restored
rows and then streams what is written after; a replica that cannot be cloned again is
reported (exit 1, the primary restored and serving) and `hosting apply` brings it back."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hosting.spec import names
from tests.engine.conftest import Project, api_context
from tests.engine.test_pitr import _connect, _query
from tests.engine.test_read_replicas import SPEC

pytestmark = pytest.mark.engine


def _read(api: str, sql: str) -> subprocess.CompletedProcess[str]:
    """`sql` on ${main.read_url}, from the app's container (the alias only replicas hold)."""
    script = 'psql "$DATABASE_URL" -X -tA -v ON_ERROR_STOP=1 -c "$1"'
    return subprocess.run(
        ["docker", "exec", api, "sh", "-c", script, "sh", sql],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _read_value(api: str, sql: str) -> str:
    out = _read(api, sql)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _until_replica_has(api: str, sql: str, expected: str) -> None:
    deadline = time.monotonic() + 120
    while (out := _read(api, sql)).stdout.strip() != expected:
        assert time.monotonic() < deadline, f"replica: {out.stdout!r} {out.stderr!r}"
        time.sleep(0.5)


def _now(creds: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(
        float(_query(creds, "SELECT extract(epoch FROM clock_timestamp())")), UTC
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_replica_follows_the_restored_primary(project: Project) -> None:
    # the read-replica test's tenant: an API reading through read_url, one replica
    project.write(SPEC.format(platform=project.platform, field="read_url", replicas=1))
    api_context(project.folder)
    project.ok("apply", "--yes")
    creds = dict(
        json.loads(project.ok("credentials", "acme/main", "--show-secrets", "--json").stdout)
    )
    api = names.container_name(project.platform, "acme", "api", 0)
    replica = names.container_name(project.platform, "acme", "main", 1)
    _query(creds, "CREATE TABLE orders (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    for _ in range(20):
        _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    project.ok("backup", "base", "acme/main")
    for _ in range(10):
        _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    time.sleep(1.5)  # separates the last insert from the drop by more than the 1 s below
    dropped_at = _now(creds)
    with _connect(creds) as conn:
        conn.execute("DROP TABLE orders")
    # The replica followed the drop: it is on the timeline the restore abandons.
    _until_replica_has(api, "SELECT to_regclass('orders') IS NULL", "t")

    done = project.ok(
        "backup", "restore", "acme/main", "--to-time", _iso(dropped_at - timedelta(seconds=1)),
        "--yes",
    )  # fmt: skip
    assert _query(creds, "SELECT count(*) FROM orders") == 30
    # Through the read alias, at once: the restore returned with the replica cloned again.
    assert _read_value(api, "SELECT pg_is_in_recovery()") == "t"
    assert _read_value(api, "SELECT count(*) FROM orders") == "30"
    assert "replica_1 cloned again" in done.stdout, done.stdout
    # Streaming resumed: a row written on the restored primary reaches the replica.
    _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    _until_replica_has(api, "SELECT count(*) FROM orders", "31")
    shown = json.loads(project.ok("status", "--json").stdout)
    [state] = shown["replication"]
    assert (state["replica"], state["state"]) == ("replica_1", "streaming"), state
    assert state["lag_bytes"] is not None and state["lag_s"] is not None

    # A replica that cannot be cloned again (its container is gone): exit 1, the primary
    # restored and serving, and the message says how to bring the replica back.
    project.ok("backup", "base", "acme/main")
    _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    time.sleep(1.5)
    second = _now(creds)
    _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")  # after the target
    subprocess.run(["docker", "rm", "-f", replica], capture_output=True, check=True)
    failed = project.run(
        "backup", "restore", "acme/main", "--to-time", _iso(second - timedelta(seconds=1)),
        "--yes",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    [line] = [ln for ln in failed.stderr.splitlines() if ln.startswith("error:")]
    assert "replica 1" in line and "restored" in line, failed.stderr
    assert "hosting apply" in failed.stderr, failed.stderr
    assert _query(creds, "SELECT count(*) FROM orders") == 32
    project.ok("apply", "--yes")  # recreates the container; its emptied volume clones afresh
    assert _read_value(api, "SELECT count(*) FROM orders") == "32"
    for text in (done.stdout, done.stderr, failed.stdout, failed.stderr):
        assert creds["password"] not in text
