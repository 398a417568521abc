"""Saved plans on the real engine: `plan --out FILE` then `apply FILE` applies exactly FILE,
and refuses, changing nothing, when the file, a secret or the stack moved on."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project

pytestmark = pytest.mark.engine

TENANT = """
  acme:
    name: Acme
    email: ops@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      site:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        env: {{GREETING: {greeting}}}
        secrets: {{SITE_TOKEN: {{env: SITE_TOKEN}}}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database}}
"""
TOKEN = "saved-plan-token-7e11a"


def write(project: Project, greeting: str) -> None:
    project.write(PLATFORM.format(platform=project.platform) + TENANT.format(greeting=greeting))


def inspect(project: Project, deployment: str) -> tuple[str, list[str]]:
    """(container id, env) of a deployment's first replica."""
    name = names.container_name(project.platform, "acme", deployment, 0)
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}} {{json .Config.Env}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    cid, env = out.stdout.split(" ", 1)
    return cid, json.loads(env)


def save(project: Project, name: str) -> dict[str, object]:
    out = project.run("plan", "--out", name, "--format", "json", "--detailed-exitcode")
    assert out.returncode == 2, out.stderr
    planned: dict[str, object] = json.loads(out.stdout)
    return planned


@pytest.fixture(scope="module")
def saved(project: Project) -> Project:
    project.env["SITE_TOKEN"] = TOKEN
    return project


def test_plan_out_then_apply_applies_exactly_the_plan(saved: Project) -> None:
    write(saved, "one")
    planned = save(saved, "p1.bin")
    assert json.loads(saved.ok("show", "p1.bin", "--format", "json").stdout) == planned
    assert TOKEN not in (saved.folder / "p1.bin").read_text()

    out = saved.ok("apply", "p1.bin")
    summary = planned["summary"]
    assert isinstance(summary, dict)
    assert f"Applied: {sum(summary.values())} resources changed." in out.stdout
    assert "GREETING=one" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0  # the database included: its password was fixed at plan time
    # The audit log records the apply of that file, by its hash, as it ended.
    [entry] = [
        e
        for e in json.loads(saved.ok("audit", "--json").stdout)["entries"]
        if e["what"]["command"] == "apply"
    ]
    assert entry["result"]["status"] == "ok"
    digest = hashlib.sha256((saved.folder / "p1.bin").read_bytes()).hexdigest()
    assert entry["what"]["args"]["plan_file"]["sha256"] == digest
    assert TOKEN not in json.dumps(entry)
    assert saved.ok("audit", "verify").returncode == 0


def test_an_edit_after_the_plan_is_refused_and_nothing_changes(saved: Project) -> None:
    before = inspect(saved, "site")
    write(saved, "two")
    save(saved, "p2.bin")
    write(saved, "three")
    out = saved.run("apply", "p2.bin")
    assert out.returncode == 1
    assert "error: the plan p2.bin is stale: hosting.yaml changed since it was made" in out.stderr
    assert "Traceback" not in out.stderr
    assert inspect(saved, "site") == before


def test_a_changed_secret_is_refused_and_named_never_shown(saved: Project) -> None:
    before = inspect(saved, "site")
    write(saved, "two")
    save(saved, "p3.bin")
    out = saved.run("apply", "p3.bin", SITE_TOKEN="a-different-token-0042")
    assert out.returncode == 1
    assert "secrets changed since it was made: acme/site/SITE_TOKEN" in out.stderr
    assert TOKEN not in out.stderr and "a-different-token-0042" not in out.stderr
    assert inspect(saved, "site") == before


def test_two_applies_of_one_plan_apply_it_once_and_the_state_stays_whole(saved: Project) -> None:
    # p3.bin (GREETING=two) is still current: the refusals above changed nothing.
    first, second = saved.popen("apply", "p3.bin"), saved.popen("apply", "p3.bin")
    results = [(p.wait(timeout=600), *p.communicate()) for p in (first, second)]
    assert sorted(code for code, _, _ in results) == [0, 1], results
    [(_, _, err)] = [r for r in results if r[0] == 1]
    # Refused by the apply lock while the other runs, or as stale once it has finished.
    assert (
        "another apply is running with the state directory" in err
        or "the plan p3.bin is stale: the stack was updated since it was made" in err
    ), err
    assert "GREETING=two" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0


def test_drift_after_the_plan_stops_the_apply_at_the_plan(saved: Project) -> None:
    write(saved, "four")
    save(saved, "p4.bin")
    site = names.container_name(saved.platform, "acme", "site", 0)
    subprocess.run(["docker", "rm", "-f", site], capture_output=True, check=True)
    out = saved.run("apply", "p4.bin")
    assert out.returncode == 1
    assert "acme_site_0: the apply would go beyond the saved plan" in out.stderr
    assert TOKEN not in out.stderr
    saved.ok("apply", "--yes")  # a fresh apply heals the drift
    assert "GREETING=four" in inspect(saved, "site")[1]
    assert saved.plan()[0] == 0
