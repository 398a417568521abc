"""The deploy commands through the real CLI, on a machine without the Pulumi CLI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hosting.store import connect
from tests.conftest import run_hosting

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("pulumi") is not None, reason="a Pulumi CLI is on PATH: these test its absence"
)

SPEC = """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: free
    started: 2026-01-01
    deployments:
      site: {type: web, image: hosting-test/busybox:latest, port: 8080}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hosting.yaml").write_text(SPEC)
    return tmp_path


def no_pulumi_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOSTING_PASSPHRASE": "test-pass"}


@pytest.mark.parametrize("args", [["plan"], ["apply", "--yes"], ["refresh"], ["destroy", "--yes"]])
def test_without_an_engine_commands_say_what_to_install(project: Path, args: list[str]) -> None:
    out = run_hosting(*args, cwd=project, env=no_pulumi_env())
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "error: the Pulumi CLI is not installed: run `hosting engine install`"
    )


def test_apply_refuses_a_tenant_at_full_storage_before_anything(project: Path) -> None:
    store = project / ".hosting" / "hosting.duckdb"
    store.parent.mkdir()
    with connect(store) as conn:
        conn.execute(
            "INSERT INTO deployment_storage VALUES "
            "('e1', 'acme', 'site', 'code', ?, NULL, TIMESTAMP '2026-11-01 00:00:00')",
            [2 * 1024**3],  # free plan: 1 GB included
        )
    out = run_hosting("apply", "--yes", cwd=project, env=no_pulumi_env())
    assert out.returncode == 1
    assert "apply refused before changing anything" in out.stderr
    assert "acme" in out.stderr and "Storage" in out.stderr
    assert "Pulumi" not in out.stderr  # refused before the engine was even looked for


def test_unknown_tenant_is_a_clear_error(project: Path) -> None:
    out = run_hosting("plan", "--tenant", "nobody", cwd=project, env=no_pulumi_env())
    assert out.returncode == 1 and "unknown tenant `nobody`" in out.stderr


def test_credentials_refuse_a_non_database(project: Path) -> None:
    out = run_hosting("credentials", "acme/site", cwd=project)
    assert out.returncode == 1 and "not a database" in out.stderr


def test_build_log_missing_is_explained(project: Path) -> None:
    out = run_hosting("logs", "acme/site", "--build", cwd=project)
    assert out.returncode == 1 and "no build log for acme/site" in out.stderr
