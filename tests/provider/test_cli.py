"""The deploy commands through the real CLI, with no Pulumi engine in reach (whatever the
machine has: PATH and the engine directory are pointed at places without one)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from hosting.store import connect
from tests.conftest import run_hosting

REPO = Path(__file__).resolve().parents[2]

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


@pytest.fixture
def no_engine_env(tmp_path: Path) -> dict[str, str]:
    """python3 and docker on PATH, but no pulumi, and an engine directory that is empty."""
    bindir = tmp_path / "bin-without-pulumi"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    docker = shutil.which("docker")
    if docker:
        (bindir / "docker").symlink_to(docker)
    return {
        "PATH": str(bindir),
        "HOSTING_ENGINE_DIR": str(tmp_path / "no-engine"),
        "HOSTING_PASSPHRASE": "test-pass",
    }


@pytest.mark.parametrize("args", [["plan"], ["apply", "--yes"], ["refresh"], ["destroy", "--yes"]])
def test_without_an_engine_commands_say_what_to_install(
    project: Path, args: list[str], no_engine_env: dict[str, str]
) -> None:
    out = run_hosting(*args, cwd=project, env=no_engine_env)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "error: the Pulumi engine is not installed: run `hosting engine build`"
    )


def test_apply_refuses_a_tenant_at_full_storage_before_anything(
    project: Path, no_engine_env: dict[str, str]
) -> None:
    store = project / ".hosting" / "hosting.duckdb"
    store.parent.mkdir()
    with connect(store) as conn:
        conn.execute(
            "INSERT INTO deployment_storage VALUES "
            "('e1', 'acme', 'site', 'code', ?, NULL, TIMESTAMP '2026-11-01 00:00:00')",
            [2 * 1024**3],  # free plan: 1 GB included
        )
    out = run_hosting("apply", "--yes", cwd=project, env=no_engine_env)
    assert out.returncode == 1
    assert "apply refused before changing anything" in out.stderr
    assert "acme" in out.stderr and "Storage" in out.stderr
    assert "Pulumi" not in out.stderr  # refused before the engine was even looked for


def test_unknown_tenant_is_a_clear_error(project: Path, no_engine_env: dict[str, str]) -> None:
    out = run_hosting("plan", "--tenant", "nobody", cwd=project, env=no_engine_env)
    assert out.returncode == 1 and "unknown tenant `nobody`" in out.stderr


def test_credentials_refuse_a_non_database(project: Path) -> None:
    out = run_hosting("credentials", "acme/site", cwd=project)
    assert out.returncode == 1 and "not a database" in out.stderr


def test_build_log_missing_is_explained(project: Path) -> None:
    out = run_hosting("logs", "acme/site", "--build", cwd=project)
    assert out.returncode == 1 and "no build log for acme/site" in out.stderr


def test_engine_install_without_network_is_one_clear_line(
    project: Path, no_engine_env: dict[str, str]
) -> None:
    # an unroutable proxy makes the download fail fast and offline, whatever the machine
    env = {**no_engine_env, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    out = run_hosting("engine", "install", cwd=project, env=env)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not install the Pulumi CLI")
