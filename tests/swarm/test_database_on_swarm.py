"""A database task on a worker of the 3-node test swarm, through the real engine (issue 11:
"`status`, `logs`, `credentials` and health work on swarm, and so do backups"): the commands
find its container on the node that runs it, not on the manager's engine where `hosting`
runs; and the edge is pinned to the node of that manager's engine.

The database is published on no port (README, "The swarm target"): its URL is reached from
its tenant's network, so the test connects the way an app does, with psql in a container on
that network (on the database's node, which has the PostgreSQL image).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import hosting
from hosting.metering.engine import Engine
from hosting.metering.health import HealthResult, health_cycle
from hosting.metering.probes import HEALTHY, Probe
from tests.engine.conftest import PASSPHRASE, Project, engine  # noqa: F401 (a fixture)
from tests.swarm.cluster import POSTGRES, Swarm, wait_for
from tests.swarm.test_example_on_swarm import image_id, load_images

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

DB_NODE = "w1"
SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
{swarm_platform}tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      main:
        type: database
      api:
        type: api
        image: hosting-test/busybox:latest
        port: 8080
        env: {{DATABASE_URL: "${{main.url}}"}}
        health: {{path: /healthz, interval_s: 2}}
"""


def spec_text(platform: str, swarm: Swarm, hosts: dict[str, str]) -> str:
    return SPEC.format(platform=platform, swarm_platform=swarm.platform_lines(hosts))


@pytest.fixture(scope="module")
def project(engine: str, swarm: Swarm) -> Iterator[Project]:  # noqa: F811
    shared = Path(swarm.manager_host.removeprefix("unix://")).parent.parent / "shared"
    folder = shared / f"db-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    platform = "d" + secrets.token_hex(3)
    # The database's node is a worker, not the manager, whose engine `hosting` talks to.
    swarm.docker("node", "update", "--label-add", "hosting.db=true", DB_NODE)
    swarm.docker("node", "update", "--label-rm", "hosting.db", "mgr", check=False)
    if not image_id(swarm, POSTGRES, DB_NODE):
        load_images(swarm, DB_NODE, POSTGRES)
    proj = Project(folder, platform, {"HOSTING_PASSPHRASE": PASSPHRASE})
    proj.write(spec_text(platform, swarm, swarm.hosts))
    try:
        yield proj
    finally:
        proj.run("destroy", "--yes", "--delete-data")


def psql(swarm: Swarm, network: str, url: str, sql: str, *, check: bool = True) -> str | None:
    """`psql URL` as an app of the tenant would: from a container on its network (attachable
    overlay), on the database's node. The URL travels in the environment, not in an argv.
    None when it failed and `check` is off."""
    done = subprocess.run(
        ["docker", "-H", swarm.hosts[DB_NODE], "run", "--rm", "--network", network,
         "-e", "URL", "--entrypoint", "sh", POSTGRES,
         "-c", 'exec psql "$URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"', "sh", sql],
        capture_output=True, text=True, timeout=120, env={"URL": url, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if done.returncode != 0 and not check:
        return None
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def database_health(project: Project, swarm: Swarm) -> HealthResult:
    """The agent's health job, in process, for the database only: the edge and the API are
    not what this asks about, so their probes answer without a request."""
    spec = hosting.load(project.folder / "hosting.yaml")
    fine = Probe(HEALTHY, "not probed here")
    report = health_cycle(
        project.state_dir / "hosting.duckdb",
        Engine(swarm.manager_host),
        spec,
        probe=lambda *_: fine,
        app_probe=lambda *_: fine,
        edge_check=lambda *_: fine,
    )
    [db] = [r for r in report.deployments if r.deployment == "main"]
    return db


def test_commands_reach_the_database_task_on_its_worker_and_the_edge_is_pinned(
    project: Project, swarm: Swarm
) -> None:
    project.ok("apply", "--yes")
    p = project.platform
    service = f"{p}_acme_main"
    wait_for("the database's task running", lambda: swarm.converged(service, 1))
    [(_, node, _)] = swarm.running_tasks(service)
    assert node == DB_NODE  # on the worker: the manager's engine does not have it

    # credentials: read from the task on w1 (its password from the secret file), a URL
    # that works from the tenant's network
    shown = json.loads(project.ok("credentials", "acme/main", "--show-secrets", "--json").stdout)
    assert (shown["host"], shown["port"]) == (f"{p}_acme_main_0", 5432)
    network = f"{p}_acme"
    url = shown["url"]
    # a new server initialises first: the URL works once it answers
    wait_for("the database answering at its URL",
             lambda: psql(swarm, network, url, "SELECT 1", check=False) == "1")  # fmt: skip
    psql(swarm, network, url, "CREATE TABLE orders (id int); INSERT INTO orders SELECT 1")
    assert psql(swarm, network, url, "INSERT INTO orders VALUES (2), (3); "
                "SELECT count(*) FROM orders") == "3"  # fmt: skip

    # logs: the server's own lines, from w1's engine
    logs = project.ok("logs", "acme/main")
    assert "database system is ready to accept connections" in logs.stdout, logs.stdout[-2000:]

    # backup: pg_dump in the task on w1, then a drill (on w1, where the image is) and a
    # restore of the dump after the rows were lost
    run = json.loads(project.ok("backup", "run", "acme/main", "--json").stdout)
    [made] = run["backups"]
    assert made["ok"] and made["file"]["size_bytes"] > 0, made
    drill = json.loads(project.ok("backup", "drill", "acme/main", "--json").stdout)
    [drilled] = drill["drills"]
    assert drilled["ok"] and drilled["rows_checked"] == 3, drilled
    psql(swarm, network, url, "DROP TABLE orders")
    project.ok("backup", "restore", "acme/main", "latest", "--yes")
    assert psql(swarm, network, url, "SELECT count(*) FROM orders") == "3"

    # health: the task's container, read on w1 (the manager's engine has none)
    db = database_health(project, swarm)
    assert (db.status, db.detail) == ("healthy", "container running"), db

    # the edge runs on the node of the manager's engine that `hosting` used, by its id
    manager_id = swarm.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    edge = json.loads(swarm.docker("service", "inspect", f"{p}_edge").stdout)[0]
    constraints = edge["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
    assert constraints == [f"node.id=={manager_id}"]
    wait_for("the edge running", lambda: swarm.converged(f"{p}_edge", 1))
    [(edge_task, _, _)] = swarm.running_tasks(f"{p}_edge")
    task_node = swarm.docker("inspect", "--format", "{{.NodeID}}", edge_task).stdout.strip()
    assert task_node == manager_id
    # ... and a second plan keeps it there: nothing to change
    code, plan = project.plan()
    assert code == 0, json.dumps(plan)[:3000]

    # a database node that does not answer is named, exit 1, no traceback
    hosts = dict(swarm.hosts)
    hosts[DB_NODE] = hosts[DB_NODE].replace(f"/{DB_NODE}/", "/no-such-node/")
    good = (project.folder / "hosting.yaml").read_text()
    project.write(spec_text(p, swarm, hosts))
    try:
        out = project.run("logs", "acme/main")
        db = database_health(project, swarm)
    finally:
        project.write(good)
    assert out.returncode == 1, out
    assert f"node {DB_NODE} (unix://" in out.stderr and "does not answer" in out.stderr
    assert "Traceback" not in out.stderr
    assert db.status == "unknown" and f"node {DB_NODE} (unix://" in db.detail, db
