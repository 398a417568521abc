"""The repository's example hosting.yaml on the 3-node test swarm, through the real engine
(issue 11, proof 1): its API is `build:` from a folder here, so apply builds it on the
manager's engine and loads it on the workers, with no registry; its static site is served
by the edge pinned to the manager.

The example runs as it is but for `platform` (the swarm, its nodes, the test images, and
dnsrr and clear overlays, which this kernel needs: README, "The swarm test cluster"), 3 API
replicas (one per node, so one is on a worker) and an API health answer that names the
task that gave it (a copy of the example's CGI script, one line more).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engine.conftest import PASSPHRASE, Project, engine  # noqa: F401 (a fixture)
from tests.swarm.cluster import POSTGRES, Swarm, wait_for
from tests.swarm.test_engine_on_swarm import edge_ca, edge_get, hostname_of, task_nodes

pytestmark = [pytest.mark.engine, pytest.mark.swarm]

# The example's API health check, answering also with its container's hostname (its id).
HEALTH = (
    "#!/bin/sh\n"
    'printf "Content-Type: application/json\\r\\n\\r\\n'
    '{\\"ok\\": true, \\"host\\": \\"%s\\"}\\n" "$(cat /etc/hostname)"\n'
)

MANAGER_IMAGES = ("hosting-demo/web:latest", "hosting-demo/api:latest")


def load_images(swarm: Swarm, node: str, *images: str) -> None:
    """Copy images of the host's engine onto one node (docker save | load)."""
    with subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE) as save:
        load = subprocess.run(
            ["docker", "-H", swarm.hosts[node], "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
        )
    assert save.returncode == 0 and load.returncode == 0, load.stderr


def example_on(swarm: Swarm, platform: str, nodes: dict[str, str] | None = None) -> str:
    """The repository's hosting.yaml with `platform` pointed at the test swarm."""
    text = (REPO / "hosting.yaml").read_text()
    swarm_lines = swarm.platform_lines(nodes if nodes is not None else swarm.hosts)
    text, n = re.subn(r"(?m)^(  public_ipv4: .*\n)", lambda m: m.group(1) + swarm_lines, text)
    assert n == 1
    text, n = re.subn(r"(?m)^  name: demo\b", f"  name: {platform}", text)
    assert n == 1
    build = "        build: {context: ./examples/services/api}\n"
    assert build in text
    return text.replace(build, build + "        replicas: 3\n")


@pytest.fixture(scope="module")
def project(engine: str, swarm: Swarm) -> Iterator[Project]:  # noqa: F811
    shared = Path(swarm.manager_host.removeprefix("unix://")).parent.parent / "shared"
    folder = shared / f"example-{secrets.token_hex(3)}"
    for part in ("services", "public"):
        shutil.copytree(REPO / "examples" / part, folder / "examples" / part)
    (folder / "examples" / "services" / "api" / "health").write_text(HEALTH)
    platform = "x" + secrets.token_hex(3)
    swarm.docker("node", "update", "--label-add", "hosting.db=true", "w1")
    # The images the example's apps name, and its API's base, on the manager only, as a
    # registry would have given them there: apply takes them to the nodes that run them.
    load_images(swarm, "mgr", *MANAGER_IMAGES)
    # PostgreSQL on the database node only (test_engine_on_swarm.py's): the manager lacks
    # it, so apply leaves it to the nodes, as one a registry serves (and moves 434 MB less).
    if not image_id(swarm, POSTGRES, "w1"):
        load_images(swarm, "w1", POSTGRES)
    env = {
        "HOSTING_PASSPHRASE": PASSPHRASE,
        "SHOP_SESSION_KEY": "example-session-key",
        "UMBRELLA_PAYMENTS_TOKEN": "example-payments-token",
    }
    proj = Project(folder, platform, env)
    proj.write(example_on(swarm, platform))
    try:
        yield proj
    finally:
        proj.run("destroy", "--yes", "--delete-data")


def image_id(swarm: Swarm, image: str, node: str) -> str:
    done = swarm.docker("image", "inspect", "--format", "{{.Id}}", image, node=node, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def test_apply_builds_the_api_here_and_loads_it_on_every_node(
    project: Project, swarm: Swarm
) -> None:
    started = time.monotonic()
    out = project.ok("apply", "--yes")
    print(f"\nexample apply on swarm: {time.monotonic() - started:.1f} s")
    api = f"{project.platform}_acme_api"
    image = swarm.docker(
        "service", "inspect", api, "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    ).stdout.strip()
    assert image.startswith(f"hosting-build/{project.platform}_acme_api:"), image
    built = image_id(swarm, image, "mgr")
    assert built and [image_id(swarm, image, n) for n in ("w1", "w2")] == [built, built]
    # apply says what it loaded where: the images the apps name, built or not, onto each
    # worker (the manager has them); not PostgreSQL, which the manager lacks
    loaded = dict(re.findall(r"(?m)^  loaded onto node (\w+): (.*)$", out.stderr))
    assert set(loaded) == {"w1", "w2"}, out.stderr
    for images in loaded.values():
        assert set(images.split(", ")) == {image, *MANAGER_IMAGES}, out.stderr
    wait_for("the API's 3 tasks running", lambda: swarm.converged(api, 3), timeout=120)
    assert set(task_nodes(swarm, api).values()) == {"mgr", "w1", "w2"}


def test_the_built_api_answers_from_workers_through_the_edge(
    project: Project, swarm: Swarm, tmp_path: Path
) -> None:
    ctx = edge_ca(swarm, project.platform, tmp_path)
    host = hostname_of(project, "acme/api")
    nodes = task_nodes(swarm, f"{project.platform}_acme_api")
    served: Counter[str] = Counter()
    for _ in range(30):
        code, body = edge_get(swarm, ctx, host, "/cgi-bin/health")
        assert code == 200, body
        served[nodes.get(json.loads(body)["host"], "unknown")] += 1
    print(f"\nthe built API through the edge, by node: {dict(served)}")
    assert "unknown" not in served
    assert set(served) - {"mgr"}, served  # a worker's task, running the image loaded there


def test_the_static_site_is_served_by_the_edge(
    project: Project, swarm: Swarm, tmp_path: Path
) -> None:
    ctx = edge_ca(swarm, project.platform, tmp_path)
    code, body = edge_get(swarm, ctx, hostname_of(project, "acme/docs"), "/")
    assert code == 200
    assert body == (REPO / "examples" / "public" / "index.html").read_text()


def test_a_second_plan_after_apply_changes_nothing(project: Project) -> None:
    code, plan = project.plan()
    assert code == 0, json.dumps(plan)[:3000]


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "node w2 (unix://"),  # listed, but its engine is not there
        ("unlisted", "node w2 of the swarm is not in platform.swarm.nodes"),
    ],
    ids=["unreachable", "unlisted"],
)
def test_a_node_a_new_image_cannot_reach_stops_apply_before_anything_changes(
    project: Project, swarm: Swarm, case: str, says: str
) -> None:
    api = f"{project.platform}_acme_api"
    before = swarm.docker("service", "inspect", api, "--format", "{{.Version.Index}}").stdout
    good = (project.folder / "hosting.yaml").read_text()
    health = project.folder / "examples" / "services" / "api" / "health"
    hosts = dict(swarm.hosts)
    if case == "unreachable":
        hosts["w2"] = hosts["w2"].replace("/w2/", "/no-such-node/")
    else:
        del hosts["w2"]
    project.write(example_on(swarm, project.platform, hosts))
    health.write_text(HEALTH + "# a new image\n")
    try:
        out = project.run("apply", "--yes")
    finally:
        project.write(good)
        health.write_text(HEALTH)
    assert out.returncode != 0
    assert says in out.stderr and "nothing was applied" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    after = swarm.docker("service", "inspect", api, "--format", "{{.Version.Index}}").stdout
    assert after == before
