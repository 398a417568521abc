"""The four sample apps (examples/apps) built from source by the real build step on the real
Docker engine, started from the same container specs apply declares (hardening included),
and answering HTTP (issue 17).

Dependencies: the host's npm and pip fetch them once into HOSTING_DEPS_CACHE (default
~/.cache/hosting/deps), keyed by lockfile; later runs reuse it and reach no registry.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hosting.errors import BuildError
from hosting.provider import runtime
from hosting.sources.build import (
    build_all,
    building_marker,
    log_path,
    plan_build,
    site_dir,
    source_builds,
)
from hosting.spec import loads
from hosting.spec.models import Spec
from hosting.spec.names import network_name
from hosting.stacks.containers import labels
from hosting.stacks.desired import desired_containers
from hosting.stacks.settings import ProgramSettings
from tests.conftest import require
from tests.docker_runtime.runtime import Engine, docker

pytestmark = pytest.mark.docker

EXAMPLES = Path(__file__).parents[2] / "examples" / "apps"
RUNTIMES = ("hosting-test/node:20", "hosting-test/python:3.11")
SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  runtimes:
    node: {{"20": "hosting-test/node:20"}}
    python: {{"3.11": "hosting-test/python:3.11"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      node:     {{type: web, source: ./node-server, health: {{interval_s: 1}}}}
      vite:     {{type: web, source: ./vite-site}}
      wsgi:     {{type: api, source: ./python-wsgi, port: 8000, health: {{interval_s: 1}}}}
      procfile: {{type: web, source: ./python-procfile, health: {{interval_s: 1}}}}
"""


@dataclass
class Built:
    spec: Spec
    apps: Path
    state: Path
    first: list[str]


@pytest.fixture(scope="module")
def deps_cache() -> Iterator[None]:
    cache = os.environ.get("HOSTING_DEPS_CACHE") or str(Path.home() / ".cache/hosting/deps")
    before = os.environ.get("HOSTING_DEPS_CACHE")
    os.environ["HOSTING_DEPS_CACHE"] = cache
    yield
    if before is None:
        del os.environ["HOSTING_DEPS_CACHE"]


@pytest.fixture(scope="module")
def built(
    docker_engine: str, deps_cache: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    missing = [i for i in RUNTIMES if docker("image", "inspect", i, check=False) == ""]
    require(not missing, f"the runtime images {', '.join(missing)} (bash .ci/images.sh)")
    tmp = tmp_path_factory.mktemp("sources")
    apps = tmp / "apps"  # a copy: one test edits a source file
    shutil.copytree(EXAMPLES, apps, ignore=shutil.ignore_patterns("node_modules", "dist"))
    spec = loads(SPEC.format(platform="s" + secrets.token_hex(4)), base_dir=apps)
    state = tmp / "state"
    first = build_all(spec, base_dir=apps, state_dir=state)
    try:
        yield Built(spec, apps, state, first)
    finally:
        for b in source_builds(spec, apps):
            docker("image", "rm", "-f", b.tag, check=False)


def get(url: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ip_of(engine: Engine, name: str) -> str:
    nets = engine.inspect(name)["NetworkSettings"]["Networks"]
    return str(next(iter(nets.values()))["IPAddress"])


def test_every_sample_is_built_once(built: Built) -> None:
    assert sorted(built.first) == ["acme/node", "acme/procfile", "acme/vite", "acme/wsgi"]


def test_servers_answer_http_from_the_hardened_containers_apply_declares(built: Built) -> None:
    settings = ProgramSettings(databases={}, state_dir=built.state, base_dir=built.apps)
    desired = desired_containers(built.spec, settings)
    assert ("acme", "vite") not in desired.apps  # a static site: the edge serves it
    engine = Engine()
    try:
        engine.network(
            network_name(built.spec.platform.name, "acme"), labels("acme", "", "network")
        )
        for did, port, body in (
            ("node", 8080, "hello from node-server: 2 days are 172800000 ms\n"),
            ("wsgi", 8000, "hello from python-wsgi\n"),
            ("procfile", 8080, "hello from python-procfile\n"),
        ):
            (replica,) = desired.apps[("acme", did)]
            assert replica.image == plan_build(built.spec, "acme", did, built.apps).tag
            name = engine.start(replica)
            engine.wait_healthy(name)  # the image's own probe: slim images have no curl
            assert get(f"http://{ip_of(engine, name)}:{port}/") == body
            config = engine.inspect(name)["Config"]
            assert config["User"] == "10001:10001"
            assert engine.inspect(name)["HostConfig"]["ReadonlyRootfs"] is True
    finally:
        engine.cleanup()


def test_the_static_build_is_served_from_its_output(built: Built) -> None:
    site = site_dir(built.state, "acme", "vite")
    index = (site / "index.html").read_text()
    assert "hello from vite-site" in index
    assert "/src/main.js" not in index  # vite rewrote it to the built bundle
    (bundle,) = (site / "assets").glob("index-*.js")
    engine = Engine()
    name = f"{built.spec.platform.name}-vite-check"
    try:
        docker("run", "-d", "--name", name, "-v", f"{site}:/www:ro", "hosting-test/busybox:latest")
        engine.containers.append(name)
        ip = ip_of(engine, name)
        assert "hello from vite-site" in get(f"http://{ip}:8080/")
        assert 'dataset.built="vite"' in get(f"http://{ip}:8080/assets/{bundle.name}")
    finally:
        engine.cleanup()


def test_unchanged_sources_build_nothing(built: Built) -> None:
    stamps = {key: log_path(built.state, *key.split("/")).stat().st_mtime_ns for key in built.first}
    assert build_all(built.spec, base_dir=built.apps, state_dir=built.state) == []
    for key, stamp in stamps.items():  # not even a log rewritten
        assert log_path(built.state, *key.split("/")).stat().st_mtime_ns == stamp


def test_a_source_change_rebuilds_with_the_dependency_layer_cached(built: Built) -> None:
    server = built.apps / "node-server" / "server.js"
    before = plan_build(built.spec, "acme", "node", built.apps).tag
    server.write_text(server.read_text().replace("hello from", "hi from"))
    try:
        after = plan_build(built.spec, "acme", "node", built.apps).tag
        assert after != before
        assert build_all(built.spec, base_dir=built.apps, state_dir=built.state) == ["acme/node"]
        log = log_path(built.state, "acme", "node").read_text()
        assert "dependencies: unchanged lockfile, reusing" in log
        steps = log.split("\nStep ")
        deps_step = next(s for s in steps if " : COPY deps/prod/ /app/" in s)
        app_step = next(s for s in steps if " : COPY app/ /app/" in s)
        assert "Using cache" in deps_step
        assert "Using cache" not in app_step
    finally:
        server.write_text(server.read_text().replace("hi from", "hello from"))
        docker("image", "rm", "-f", after, check=False)


def test_a_broken_build_fails_with_its_last_lines_and_keeps_the_old_image(
    built: Built, tmp_path: Path
) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "package.json").write_text(
        json.dumps({"scripts": {"build": "node build.js", "start": "node server.js"}})
    )
    (app / "build.js").write_text("const x = ;\n")
    (app / "server.js").write_text("")
    raw = SPEC.format(platform=built.spec.platform.name).replace("./node-server", str(app))
    spec = loads(raw, base_dir=built.apps)
    old = plan_build(built.spec, "acme", "node", built.apps).tag
    with pytest.raises(BuildError) as info:
        build_all(spec, base_dir=built.apps, state_dir=built.state, tenant="acme")
    err = info.value
    assert err.message == "building acme/node failed"
    assert any("SyntaxError" in line for line in err.log_tail)
    assert err.log_path == log_path(built.state, "acme", "node")
    assert "SyntaxError" in err.log_path.read_text()
    rendered = err.lines()
    assert rendered[-1] == f"  the whole build log: {err.log_path}"
    assert docker("image", "inspect", "-f", "{{.Id}}", old).startswith("sha256:")


def test_the_build_runs_within_the_tenants_plan_and_offline(built: Built) -> None:
    log = log_path(built.state, "acme", "procfile").read_text()
    (command,) = [line for line in log.splitlines() if line.startswith("$ docker build")]
    # pro: 4096 MB and 2 CPUs (README's plans table)
    assert "--network none" in command
    assert "--memory 4096m --memory-swap 4096m" in command
    assert "--cpu-period 100000 --cpu-quota 200000" in command


def test_status_says_building_while_a_build_runs(built: Built) -> None:
    marker = building_marker(built.state, "acme", "node")
    marker.touch()
    try:
        words = {s.deployment: s.status for s in runtime.status(built.spec, state_dir=built.state)}
    finally:
        marker.unlink()
    assert words["node"] == "building"
    assert words["wsgi"] == "pending"  # built, but nothing of it runs on the engine
    after = {s.deployment: s.status for s in runtime.status(built.spec, state_dir=built.state)}
    assert after["node"] == "pending"
