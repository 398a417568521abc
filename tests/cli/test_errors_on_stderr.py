"""Errors go to stderr, one line each, naming what, where and how to fix; nothing from Docker
leaks onto stdout; a bare `hosting` is a request for help, not an error."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.conftest import REPO, run_hosting


@pytest.fixture
def unapplied(tmp_path: Path) -> Path:
    """The example under a platform name no container on this engine carries."""
    text = (
        (REPO / "hosting.yaml")
        .read_text()
        .replace("name: demo ", f"name: t{secrets.token_hex(4)} ")
    )
    text = text.replace("./examples/", f"{REPO}/examples/")
    (tmp_path / "hosting.yaml").write_text(text)
    return tmp_path


def _one_error(done: object, *needles: str) -> None:
    assert done.returncode == 1, done  # type: ignore[attr-defined]
    assert done.stdout == "", done.stdout  # type: ignore[attr-defined]
    err: str = done.stderr  # type: ignore[attr-defined]
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_bare_hosting_prints_the_help_and_exits_0() -> None:
    done = run_hosting()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: hosting") and "Commands:" in done.stdout
    assert done.stderr == ""


def test_a_bare_group_prints_its_help_and_exits_0() -> None:
    done = run_hosting("invoice")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: hosting invoice") and done.stderr == ""


def test_logs_since_a_bogus_value_is_refused_before_docker_runs(unapplied: Path) -> None:
    done = run_hosting("logs", "acme/shop", "--since", "bogus", cwd=unapplied)
    _one_error(done, "`bogus` is not a duration or a time", "10m")


@pytest.mark.parametrize("since", ["10m", "2h", "1h30m", "2026-11-05", "2026-11-05T10:00:00Z"])
def test_logs_since_takes_what_docker_takes(unapplied: Path, since: str) -> None:
    from hosting.dates import parse_since

    assert parse_since(since) == since


def test_logs_of_a_static_site_points_at_the_edge_access_log(unapplied: Path) -> None:
    done = run_hosting("logs", "acme/docs", cwd=unapplied)
    _one_error(done, "acme/docs is a static site", "edge/logs/access.log")
    assert "is it applied" not in done.stderr


@pytest.mark.docker
def test_logs_of_an_unapplied_deployment_say_so_on_stderr(
    docker_engine: str, unapplied: Path
) -> None:
    done = run_hosting("logs", "acme/shop", cwd=unapplied)
    _one_error(done, "acme/shop has no containers", "hosting apply")
    assert "No such container" not in done.stderr


@pytest.mark.docker
def test_credentials_of_a_database_that_is_not_running_does_not_blame_the_engine(
    docker_engine: str, unapplied: Path
) -> None:
    done = run_hosting("credentials", "acme/main", cwd=unapplied)
    _one_error(done, "acme/main has no container", "hosting apply")
    assert "Docker engine" not in done.stderr
