"""Shared fixtures: real services are required in CI and skipped (with the reason) elsewhere.

With CI=true a missing Docker engine, Caddy, Pebble or Chromium is a failure: `.ci/run`
installs and starts them, so their absence means CI itself is broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parent.parent


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI: CI must never pass by skipping what it can run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (.ci/run installs and starts it)")
    pytest.skip(f"{what} is not available here; run `bash .ci/services.sh` as root")


def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def golden(path: Path, actual: str) -> str:
    """The reviewed text of a golden file. `UPDATE_GOLDEN=1` first rewrites it with `actual`:
    the one switch for every golden file in the suite; read the diff before committing."""
    if os.environ.get("HOSTING_UPDATE_GOLDEN"):
        pytest.fail("HOSTING_UPDATE_GOLDEN is gone: set UPDATE_GOLDEN=1")
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    return path.read_text()


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """A running Docker engine with the local test images (see .ci/images.sh)."""
    require(_docker_ok(), "a running Docker engine")
    missing = [
        image
        for image in (
            "hosting-test/busybox:latest",
            "hosting-test/caddy:latest",
            "hosting-test/postgres:15",
        )
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode
    ]
    require(not missing, f"the local images {', '.join(missing)} (bash .ci/images.sh)")
    return "unix:///var/run/docker.sock"


@pytest.fixture(scope="session")
def caddy_binary() -> str:
    path = shutil.which("caddy")
    require(path is not None, "the caddy binary (Debian package caddy)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def pebble_binaries() -> tuple[str, str]:
    pebble, chall = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
    require(
        pebble is not None and chall is not None,
        "pebble and pebble-challtestsrv (Debian package pebble)",
    )
    assert pebble is not None and chall is not None
    return pebble, chall


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "headless Chromium (Debian package chromium)")
    assert path is not None
    return path


@pytest.fixture
def example_file() -> Path:
    return REPO / "hosting.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def run_hosting(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess: real exit codes, real stdout and stderr."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        ["python3", "-m", "hosting", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=600,
    )
