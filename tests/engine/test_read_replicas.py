"""Read replicas through the real engine (issue 12): apply starts them and feeds the primary,
an app reads through `${main.read_url}` from a standby, status shows it streaming, and
removing the replica drops its slot on the primary."""

from __future__ import annotations

import json
import subprocess

import pytest

from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project, api_context, edge_root_ca, https_get

pytestmark = pytest.mark.engine

SPEC = (
    PLATFORM
    + """\
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-09-03
    deployments:
      api:
        type: api
        build: {{context: ./api}}
        port: 8080
        env: {{DATABASE_URL: "${{main.{field}}}"}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database, replicas: {replicas}}}
"""
)


def _exec(container: str, *command: str) -> str:
    out = subprocess.run(
        ["docker", "exec", container, *command], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_app_reads_from_a_replica_and_a_removed_replica_leaves_no_slot(
    project: Project,
) -> None:
    project.write(SPEC.format(platform=project.platform, field="read_url", replicas=1))
    api_context(project.folder)
    project.ok("apply", "--yes")
    api = names.container_name(project.platform, "acme", "api", 0)
    primary = names.container_name(project.platform, "acme", "main", 0)
    replica = names.container_name(project.platform, "acme", "main", 1)
    # The app's url is the read alias: the server that answers is a standby.
    in_recovery = _exec(api, "sh", "-c", 'psql "$DATABASE_URL" -tAc "select pg_is_in_recovery()"')
    assert in_recovery == "t"
    ctx = edge_root_ca(project.platform, project.folder)
    host = names.hostname("acme", "api", "api", "apps.test")
    status, body = https_get(ctx, host, "/cgi-bin/db")
    assert (status, body.strip()) == (200, f"db-ok:{names.database_name('main')}")
    shown = json.loads(project.ok("status", "--json").stdout)
    assert [(r["replica"], r["state"]) for r in shown["replication"]] == [
        ("replica_1", "streaming")
    ]
    [row] = [d for d in shown["deployments"] if d["deployment"] == "main"]
    assert (row["replicas_running"], row["replicas_wanted"]) == (2, 2)
    assert project.plan()[0] == 0  # nothing left to do: the program agrees with the engine

    project.write(SPEC.format(platform=project.platform, field="url", replicas=0))
    project.ok("apply", "--yes")
    gone = subprocess.run(["docker", "inspect", replica], capture_output=True, check=False)
    assert gone.returncode != 0
    slots = _exec(
        primary, "sh", "-c",
        'psql -h /tmp -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc '
        "\"select count(*) from pg_replication_slots\"",
    )  # fmt: skip
    assert slots == "0"
    assert json.loads(project.ok("status", "--json").stdout)["replication"] == []
