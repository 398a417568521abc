"""`hosting secrets rotate` under load, on the real engine (issue 13).

An API of two replicas reads PostgreSQL through `${main.url}` on every request. Rotating gives
the database a second login; the apply after it rolls the API onto it while a load loop runs
through the edge, then retires the first. Zero requests fail, and the first password is
refused afterwards.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import psycopg
import pytest

from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project, api_context, changes, edge_root_ca, https_get

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
        replicas: 2
        env: {{DATABASE_URL: "${{main.url}}"}}
        secrets: {{API_TOKEN: {{file: ./token.txt}}}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database}}
"""
)


FIRST_TOKEN = "token-one-5b8e2f7a9c1d"
SECOND_TOKEN = "token-two-0f4a6c2e8b3d"


def _login(creds: dict[str, Any]) -> bool:
    try:
        with psycopg.connect(
            host=creds["host"],
            port=creds["port"],
            user=creds["user"],
            password=creds["password"],
            dbname=creds["name"],
            connect_timeout=10,
        ) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _credentials(project: Project) -> dict[str, Any]:
    out = project.ok("credentials", "acme/main", "--show-secrets", "--json")
    return dict(json.loads(out.stdout))


def test_rotation_rolls_the_api_without_a_failed_request(project: Project) -> None:
    project.write(SPEC.format(platform=project.platform))
    (project.folder / "token.txt").write_text(FIRST_TOKEN + "\n")
    api_context(project.folder)
    project.ok("apply", "--yes")
    first = _credentials(project)
    host = names.hostname("acme", "api", "api", "apps.test")
    ctx = edge_root_ca(project.platform, project.folder)
    expected = f"db-ok:{names.database_name('main')}"
    assert https_get(ctx, host, "/cgi-bin/db")[1].strip() == expected

    rotated = project.ok("secrets", "rotate", "acme/main")
    assert "acme/api" in rotated.stdout  # what the next apply rolls
    assert _login(first)  # still valid until that apply
    _, plan = project.plan()
    assert {("api", "acme_api_0", "replace"), ("api", "acme_api_1", "replace")} <= changes(plan)[
        "acme"
    ]

    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, body = https_get(ctx, host, "/cgi-bin/db")
                outcomes.append("ok" if (status, body.strip()) == (200, expected) else
                                f"{status} {body.strip()[:80]}")  # fmt: skip
            except OSError as exc:
                outcomes.append(f"error {exc}")
            time.sleep(0.05)

    loop = threading.Thread(target=load, daemon=True)
    loop.start()
    try:
        applied = project.ok("apply", "--yes")
        time.sleep(3)  # requests after the apply, on the new login only
    finally:
        stop.set()
        loop.join(timeout=60)
    failed = [o for o in outcomes if o != "ok"]
    print(f"rotation under load: {len(outcomes)} requests, {len(failed)} failed")
    assert len(outcomes) > 20 and failed == []

    second = _credentials(project)
    assert second["user"] == "u_acme_main_r1" and second["password"] != first["password"]
    assert _login(second)
    assert not _login(first)  # retired by the apply
    assert https_get(ctx, host, "/cgi-bin/db")[1].strip() == expected
    assert project.plan()[0] == 0  # nothing left to roll

    for text in (rotated.stdout + rotated.stderr, applied.stdout + applied.stderr):
        assert second["password"] not in text and first["password"] not in text
    # Nor in any file of the state directory but the tenants' database filesystems (volumes/).
    for path in project.state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            if path.relative_to(project.state_dir).parts[0] == "volumes":
                continue
            data = path.read_bytes()
            assert second["password"].encode() not in data, path
            assert first["password"].encode() not in data, path
    [entry] = [
        e
        for e in json.loads(project.ok("audit", "--json").stdout)["entries"]
        if e["what"]["command"] == "secrets rotate"
    ]
    assert entry["result"]["status"] == "ok"
    assert second["password"] not in json.dumps(entry)


def test_a_changed_secret_value_rolls_its_deployment_and_is_stored_nowhere(
    project: Project,
) -> None:
    """A `{file}` secret's new value: plan shows the deployment replaced, apply rolls it, and
    neither value is written in plain text anywhere in the state directory."""
    assert project.plan()[0] == 0  # the module's first test left it applied
    (project.folder / "token.txt").write_text(SECOND_TOKEN + "\n")
    code, plan = project.plan()
    assert code == 2
    assert {("api", "acme_api_0", "replace"), ("api", "acme_api_1", "replace")} <= changes(plan)[
        "acme"
    ]
    shown = project.ok("plan").stdout
    applied = project.ok("apply", "--yes")
    api = names.container_name(project.platform, "acme", "api", 0)
    out = subprocess.run(
        ["docker", "exec", api, "printenv", "API_TOKEN"], capture_output=True, text=True
    )
    assert out.stdout.strip() == SECOND_TOKEN
    for text in (shown, applied.stdout + applied.stderr):
        assert FIRST_TOKEN not in text and SECOND_TOKEN not in text
    for path in project.state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            if path.relative_to(project.state_dir).parts[0] == "volumes":
                continue
            data = path.read_bytes()
            assert FIRST_TOKEN.encode() not in data, path
            assert SECOND_TOKEN.encode() not in data, path
