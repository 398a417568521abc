"""Source deployments in what apply declares (no engine, no build): the container runs the
image tagged by content with the image's own probe, a static build is bound into the edge and
routed like `static`, and a change of one source file changes only that tag (issue 17)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hosting.edge.caddy import STATIC_ROOT, build_config
from hosting.sources.build import plan_build, site_dir, static_sites
from hosting.sources.dockerfile import PROBE
from hosting.spec import loads
from hosting.stacks.desired import desired_containers, image_of
from hosting.stacks.settings import ProgramSettings

EXAMPLES = Path(__file__).parents[2] / "examples" / "apps"
SPEC = """
version: 1
platform: {name: demo, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      node: {type: web, source: ./node-server}
      vite: {type: web, source: ./vite-site}
"""


def setup(tmp_path: Path) -> tuple[Path, ProgramSettings]:
    apps = tmp_path / "apps"
    shutil.copytree(EXAMPLES, apps, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return apps, ProgramSettings(databases={}, state_dir=tmp_path / "state", base_dir=apps)


def test_a_server_runs_its_tagged_image_with_its_probe(tmp_path: Path) -> None:
    apps, settings = setup(tmp_path)
    spec = loads(SPEC, base_dir=apps)
    (replica,) = desired_containers(spec, settings).apps[("acme", "node")]
    tag = plan_build(spec, "acme", "node", apps).tag
    assert tag.startswith("hosting-src/demo_acme_node:")
    assert replica.image == tag == image_of(spec, "acme", "node", apps)
    assert replica.env["PORT"] == "8080"
    assert replica.health is not None
    assert replica.health.test == ("CMD", PROBE, "http://127.0.0.1:8080/")


def test_a_static_build_is_bound_into_the_edge_and_routed_as_files(tmp_path: Path) -> None:
    apps, settings = setup(tmp_path)
    spec = loads(SPEC, base_dir=apps)
    desired = desired_containers(spec, settings)
    assert ("acme", "vite") not in desired.apps
    folder = str(site_dir(settings.state_dir.resolve(), "acme", "vite"))
    assert desired.static_binds[f"{STATIC_ROOT}/acme/vite"] == folder
    assert static_sites(spec, apps) == frozenset({("acme", "vite")})
    config = build_config(spec, static_sources=static_sites(spec, apps))
    routes = config["apps"]["http"]["servers"]["edge"]["routes"]
    handlers = [
        h for r in routes for h in r["handle"] if h.get("root") == f"{STATIC_ROOT}/acme/vite"
    ]
    assert [h["handler"] for h in handlers] == ["file_server"]


def test_only_the_edited_source_changes_its_tag(tmp_path: Path) -> None:
    apps, _ = setup(tmp_path)
    spec = loads(SPEC, base_dir=apps)
    before = {d: plan_build(spec, "acme", d, apps).tag for d in ("node", "vite")}
    assert before == {d: plan_build(spec, "acme", d, apps).tag for d in ("node", "vite")}
    (apps / "node-server" / "server.js").write_text("// changed\n")
    after = {d: plan_build(spec, "acme", d, apps).tag for d in ("node", "vite")}
    assert after["vite"] == before["vite"]
    assert after["node"] != before["node"]
