"""A `source:` deployment on the 3-node test swarm, through the real engine (issue 11).

A folder of Python source, no Dockerfile: apply detects it, builds it on the manager's
engine under a content tag and loads that image onto the workers (no registry); the edge
then serves the app's own answer from tasks on several nodes. An edited source file is a
new tag the service rolls to, and a second plan after that changes nothing.

The smallest runtime the source tests use: the Python base image, no dependencies (the
Procfile sample's shape), so nothing is fetched. The base image is on the manager only, as
a registry would have given it to the build host; the workers get only the built image.
"""

from __future__ import annotations

import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import PASSPHRASE, Project, engine  # noqa: F401 (a fixture)
from tests.swarm.cluster import Swarm, wait_for
from tests.swarm.test_engine_on_swarm import edge_ca, edge_get, hostname_of, task_nodes
from tests.swarm.test_example_on_swarm import image_id, load_images

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

BASE = "hosting-test/python:3.11"
REPLICAS = 3  # as many as nodes: the scheduler spreads them, so workers run the built image

# Answers with its version and its container's hostname (the task's container id), so a
# body names both the build that served it and the node.
APP = """\
import os
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer

VERSION = "{version}"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from source {{VERSION}} on {{socket.gethostname()}}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Hello).serve_forever()
"""
BODY = re.compile(r"hello from source (v\d) on ([0-9a-f]{12})\n")

SPEC = """\
version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
{swarm_platform}  runtimes:
    python: {{"3.11": "{base}"}}
tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      api:
        type: api
        source: ./app
        replicas: {replicas}
        health: {{interval_s: 1}}
"""


def write_app(folder: Path, version: str) -> None:
    (folder / "app" / "app.py").write_text(APP.format(version=version))


@pytest.fixture(scope="module")
def project(engine: str, swarm: Swarm) -> Iterator[Project]:  # noqa: F811
    # under the folder every node shares at the same path (the edge's bind mounts)
    shared = Path(swarm.manager_host.removeprefix("unix://")).parent.parent / "shared"
    folder = shared / f"source-{secrets.token_hex(3)}"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "Procfile").write_text("web: python app.py\n")
    (folder / "app" / "requirements.txt").write_text("# the standard library only\n")
    write_app(folder, "v1")
    if not image_id(swarm, BASE, "mgr"):
        load_images(swarm, "mgr", BASE)
    platform = "r" + secrets.token_hex(3)
    proj = Project(folder, platform, {"HOSTING_PASSPHRASE": PASSPHRASE})
    proj.write(
        SPEC.format(
            platform=platform,
            swarm_platform=swarm.platform_lines(swarm.hosts),
            base=BASE,
            replicas=REPLICAS,
        )
    )
    try:
        yield proj
    finally:
        proj.run("destroy", "--yes", "--delete-data")


def build_seconds(stderr: str) -> float:
    """The build's own time, as its log (shown by apply) ends it."""
    [seconds] = re.findall(r"(?m)^  build acme/api \| # built \S+ in ([\d.]+)s$", stderr)
    return float(seconds)


def loaded_onto(stderr: str) -> dict[str, set[str]]:
    """node → the images apply says it loaded there."""
    return {
        node: set(images.split(", "))
        for node, images in re.findall(r"(?m)^  loaded onto node (\w+): (.*)$", stderr)
    }


def test_a_source_app_is_built_once_runs_on_every_node_and_rolls_to_an_edit(
    project: Project, swarm: Swarm, tmp_path: Path
) -> None:
    service = f"{project.platform}_acme_api"
    timings: dict[str, float] = {}

    def running_image() -> str:
        return swarm.docker(
            "service", "inspect", service, "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
        ).stdout.strip()

    def same_image_everywhere(tag: str) -> None:
        built = image_id(swarm, tag, "mgr")
        assert built, f"{tag} is not on the manager, where it was built"
        assert {n: image_id(swarm, tag, n) for n in swarm.nodes} == dict.fromkeys(
            swarm.nodes, built
        )
        # and each running task's container was made from that very image
        for task, node, _ in swarm.running_tasks(service):
            where, container = swarm.task_container(task)
            assert where == node
            used = swarm.docker("inspect", "--format", "{{.Image}}", container, node=node)
            assert used.stdout.strip() == built, (node, tag)

    def served(ctx: ssl.SSLContext, host: str, count: int) -> tuple[Counter[str], set[str]]:
        """(node → answers, versions seen) of `count` requests through the edge."""
        nodes = task_nodes(swarm, service)
        by_node: Counter[str] = Counter()
        versions = set()
        for _ in range(count):
            code, body = edge_get(swarm, ctx, host, "/")
            assert code == 200, body
            match = BODY.fullmatch(body)
            assert match, f"not the app's answer: {body!r}"
            versions.add(match[1])
            by_node[nodes.get(match[2], "unknown")] += 1
        return by_node, versions

    # 1. apply: built on the manager, loaded onto both workers, 3 tasks
    started = time.monotonic()
    first = project.ok("apply", "--yes")
    timings["first apply"] = time.monotonic() - started
    assert "built acme/api" in first.stderr, first.stderr
    timings["build v1 (in the apply)"] = build_seconds(first.stderr)
    tag = running_image()
    assert tag.startswith(f"hosting-src/{project.platform}_acme_api:"), tag
    assert loaded_onto(first.stderr) == {"w1": {tag}, "w2": {tag}}, first.stderr
    timings["3 tasks running"] = wait_for(
        "the API's 3 tasks running", lambda: swarm.converged(service, REPLICAS)
    )
    assert set(task_nodes(swarm, service).values()) == set(swarm.nodes)
    same_image_everywhere(tag)

    # 2. the app's own answer through the edge, from tasks on more than one node
    ctx = edge_ca(swarm, project.platform, tmp_path)
    host = hostname_of(project, "acme/api")
    by_node, versions = served(ctx, host, 30)
    print(f"\nv1 through the edge, by node: {dict(by_node)}")
    assert versions == {"v1"}
    assert "unknown" not in by_node and len(by_node) > 1, by_node

    # 3. one source file changed: a new content tag, loaded where it runs, the tasks roll
    write_app(project.folder, "v2")
    started = time.monotonic()
    second = project.ok("apply", "--yes")
    timings["apply of the edit"] = time.monotonic() - started
    assert "built acme/api" in second.stderr, second.stderr
    timings["build v2 (in the apply)"] = build_seconds(second.stderr)
    new = running_image()
    assert new.startswith(f"hosting-src/{project.platform}_acme_api:") and new != tag, new
    assert loaded_onto(second.stderr) == {"w1": {new}, "w2": {new}}, second.stderr
    timings["rolled"] = wait_for(
        "the API's 3 tasks on the new image", lambda: swarm.converged(service, REPLICAS)
    )
    same_image_everywhere(new)

    # the edge follows the new tasks' addresses (it re-resolves them): v2 once it has
    def answers_v2() -> bool:
        code, body = edge_get(swarm, ctx, host, "/")
        return code == 200 and body.startswith("hello from source v2 ")

    timings["edge serves v2"] = wait_for("the edge serving v2", answers_v2, timeout=60)
    by_node, versions = served(ctx, host, 30)
    print(f"v2 through the edge, by node: {dict(by_node)}")
    # only the new tasks answer (where start-first placed them: not always on 2 nodes)
    assert versions == {"v2"} and "unknown" not in by_node, by_node

    # 4. nothing left to do
    started = time.monotonic()
    code = project.run("plan", "--detailed-exitcode").returncode
    timings["second plan"] = time.monotonic() - started
    assert code == 0
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
