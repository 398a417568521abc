"""`source:` deployments through a real `apply` (issue 17): the four sample apps built from
their folders and answering through the edge; a second apply builds nothing and plans no
change; a broken build fails apply with its last lines while the old version keeps serving.

Dependencies come from HOSTING_DEPS_CACHE (default ~/.cache/hosting/deps), keyed by
lockfile: the first run on a machine fetches them with the host's npm and pip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project, edge_root_ca, https_get

pytestmark = pytest.mark.engine

EXAMPLES = Path(__file__).parents[2] / "examples" / "apps"
RUNTIMES = """\
  runtimes:
    node: {"20": "hosting-test/node:20"}
    python: {"3.11": "hosting-test/python:3.11"}
tenants:
"""
TENANT = """\
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      node:     {type: web, source: ./apps/node-server, health: {interval_s: 1}}
      vite:     {type: web, source: ./apps/vite-site}
      wsgi:     {type: api, source: ./apps/python-wsgi, port: 8000, health: {interval_s: 1}}
      procfile: {type: web, source: ./apps/python-procfile, health: {interval_s: 1}}
"""
BODIES = {
    ("node", "web"): "hello from node-server: 2 days are 172800000 ms\n",
    ("wsgi", "api"): "hello from python-wsgi\n",
    ("procfile", "web"): "hello from python-procfile\n",
}


def host(deployment: str, kind: str) -> str:
    return names.hostname("acme", deployment, kind, "apps.test")


@pytest.fixture(scope="module")
def sources(project: Project) -> Iterator[Project]:
    shutil.copytree(EXAMPLES, project.folder / "apps")
    project.env["HOSTING_DEPS_CACHE"] = os.environ.get("HOSTING_DEPS_CACHE") or str(
        Path.home() / ".cache/hosting/deps"
    )
    platform = PLATFORM.format(platform=project.platform).replace("tenants:\n", RUNTIMES)
    project.write(platform + TENANT)
    yield project
    # destroy keeps images (keep_locally); these are this module's own, by their name
    listing = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    ours = [i for i in listing.stdout.split() if i.startswith(f"hosting-src/{project.platform}_")]
    if ours:
        subprocess.run(["docker", "image", "rm", "-f", *ours], capture_output=True, check=False)


def get_until_ok(project: Project, deployment: str, kind: str) -> str:
    ctx = edge_root_ca(project.platform, project.folder)
    deadline = time.monotonic() + 90
    while True:
        status, body = https_get(ctx, host(deployment, kind))
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, body
            return body
        time.sleep(0.5)


def test_apply_builds_each_sample_and_the_edge_answers_it(sources: Project) -> None:
    out = sources.ok("apply", "--yes")
    for key in ("acme/node", "acme/vite", "acme/wsgi", "acme/procfile"):
        assert f"built {key}" in out.stderr
    assert "FROM hosting-test/node:20" in out.stderr  # the Dockerfile, live in the progress
    for (did, kind), body in BODIES.items():
        assert get_until_ok(sources, did, kind) == body
    assert "hello from vite-site" in get_until_ok(sources, "vite", "web")
    status = json.loads(sources.ok("status", "--json").stdout)
    words = {d["deployment"]: d["status"] for d in status["deployments"]}
    assert words == dict.fromkeys(("node", "vite", "wsgi", "procfile"), "running")


def test_a_second_apply_builds_nothing_and_plans_no_change(sources: Project) -> None:
    logs = sorted((sources.state_dir / "logs" / "build").glob("acme_*.log"))
    stamps = [p.stat().st_mtime_ns for p in logs]
    code = sources.run("plan", "--detailed-exitcode").returncode
    assert code == 0
    out = sources.ok("apply", "--yes")
    assert " build acme/" not in out.stderr
    assert "Applied: 0 resources changed." in out.stdout
    assert [p.stat().st_mtime_ns for p in logs] == stamps


def test_logs_build_shows_the_generated_dockerfile(sources: Project) -> None:
    out = sources.ok("logs", "acme/wsgi", "--build", "--follow")  # no build runs: returns
    assert "RUN python3 -m venv /venv" in out.stdout
    assert "Successfully tagged hosting-src/" in out.stdout


@contextmanager
def requests_to_node(project: Project) -> Iterator[dict[str, int]]:
    ctx = edge_root_ca(project.platform, project.folder)
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic() + 600
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                status, body = https_get(ctx, host("node", "web"))
                good = status == 200 and body == BODIES[("node", "web")]
            except OSError:
                good = False
            counts["ok" if good else "failed"] += 1
            time.sleep(0.02)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield counts
    finally:
        stop.set()
        worker.join(timeout=30)


def test_a_broken_build_fails_apply_and_the_old_version_keeps_serving(sources: Project) -> None:
    app = sources.folder / "apps" / "node-server"
    manifest = json.loads((app / "package.json").read_text())
    manifest["scripts"]["build"] = "node build.js"
    (app / "package.json").write_text(json.dumps(manifest))
    (app / "build.js").write_text("const broken = ;\n")
    with requests_to_node(sources) as counts:
        out = sources.run("apply", "--yes")
        time.sleep(2)  # requests after the failure too
    assert out.returncode == 1
    assert "error: building acme/node failed" in out.stderr
    assert "SyntaxError" in out.stderr
    log = sources.state_dir / "logs" / "build" / "acme_node.log"
    assert f"the whole build log: {log}" in out.stderr
    assert "SyntaxError" in log.read_text()
    assert "Traceback" not in out.stderr
    assert counts["ok"] > 0
    assert counts["failed"] == 0
