"""Point-in-time recovery on the real engine: the database apply creates archives its WAL
into the state directory's backup folder, `backup base` takes a base backup of it (and seals
the WAL archived so far), a table dropped by mistake comes back by `backup restore
--to-time`, and afterwards apply has nothing to change (the restore kept the container apply
made; it swapped its data only)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.engine.conftest import PLATFORM, Project

pytestmark = pytest.mark.engine

SPEC = (
    PLATFORM
    + """\
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-09-03
    deployments:
      main: {{type: database}}
"""
)


def _connect(creds: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=creds["host"], port=creds["port"], user=creds["user"],
        password=creds["password"], dbname=creds["name"], connect_timeout=10, autocommit=True,
        client_encoding="utf8",  # the test image's cluster is SQL_ASCII: text would be bytes
    )  # fmt: skip


def _query(creds: dict[str, Any], sql: str) -> Any:
    deadline = time.monotonic() + 120
    while True:
        try:
            with _connect(creds) as conn:
                cur = conn.execute(sql)
                row = cur.fetchone() if cur.description else None  # DDL returns no rows
                return row[0] if row else None
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_a_dropped_table_comes_back_to_the_second_before(project: Project) -> None:
    project.write(SPEC.format(platform=project.platform))
    project.ok("apply", "--yes")
    creds = dict(
        json.loads(project.ok("credentials", "acme/main", "--show-secrets", "--json").stdout)
    )
    _query(creds, "CREATE TABLE orders (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    for _ in range(20):
        _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    assert _query(creds, "SHOW archive_mode") == "on"

    base = project.ok("backup", "base", "acme/main", "--json")
    [made] = json.loads(base.stdout)["base_backups"]
    assert made["ok"], made
    assert made["wal_sealed"] >= 1  # what the server archived, now encrypted at rest
    for _ in range(10):
        _query(creds, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    time.sleep(1.5)  # separates the last insert from the drop by more than the 1 s below
    dropped_at = datetime.fromtimestamp(
        float(_query(creds, "SELECT extract(epoch FROM clock_timestamp())")), UTC
    )
    with _connect(creds) as conn:
        conn.execute("DROP TABLE orders")

    target = (dropped_at - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    done = project.ok("backup", "restore", "acme/main", "--to-time", target, "--yes")
    assert f"from base backup {made['name']}" in done.stdout
    assert _query(creds, "SELECT count(*) FROM orders") == 30

    wal = project.state_dir / "backups" / "acme" / "main" / "wal"
    assert any(p.name.endswith(".gz.enc") for p in wal.iterdir())  # restored through sealed WAL
    assert not list(project.state_dir.glob("backups/acme/main/.wal-opened-*"))
    assert project.plan()[0] == 0  # apply has nothing to change after a restore
    for text in (base.stdout, base.stderr, done.stdout, done.stderr):
        assert creds["password"] not in text
