"""Connection pooling through the real engine (issue 12): an app reaches PostgreSQL through
PgBouncer on `${main.url}`, still does after `secrets rotate` and the apply that rolls it,
and destroy leaves no pooler config (it holds SCRAM verifiers) behind."""

from __future__ import annotations

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
    plan: starter
    started: 2026-09-03
    deployments:
      api:
        type: api
        build: {{context: ./api}}
        port: 8080
        env: {{DATABASE_URL: "${{main.url}}"}}
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database, pooling: true}}
"""
)


def _env(container: str, name: str) -> str:
    out = subprocess.run(
        ["docker", "exec", container, "printenv", name], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_app_reaches_its_database_through_the_pooler_across_a_rotation(
    project: Project,
) -> None:
    project.write(SPEC.format(platform=project.platform))
    api_context(project.folder)
    project.ok("apply", "--yes")
    api = names.container_name(project.platform, "acme", "api", 0)
    pooler = f"{project.platform}_acme_main_pooler"
    assert f"@{pooler}:6432/" in _env(api, "DATABASE_URL")
    ctx = edge_root_ca(project.platform, project.folder)
    host = names.hostname("acme", "api", "api", "apps.test")
    expected = (200, f"db-ok:{names.database_name('main')}")

    def served() -> tuple[int, str]:
        status, body = https_get(ctx, host, "/cgi-bin/db")
        return status, body.strip()

    assert served() == expected
    assert project.plan()[0] == 0

    project.ok("secrets", "rotate", "acme/main")
    project.ok("apply", "--yes")
    assert "u_acme_main_r1:" in _env(api, "DATABASE_URL")
    assert served() == expected  # the new login, through the replaced pooler
    assert project.plan()[0] == 0

    assert (project.state_dir / "pooler").is_dir()
    project.ok("destroy", "--yes")
    assert not (project.state_dir / "pooler").exists()
