"""Finding the Pulumi CLI, and what a user hears when it is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hosting.errors import EngineMissingError
from hosting.provider import engine


def test_missing_engine_names_exactly_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(EngineMissingError) as err:
        engine.command(tmp_path)
    text = err.value.message
    assert "hosting engine install" in text
    assert "pulumi v3." in text and "docker plugin v4." in text
    assert "\n" not in text


def test_state_dir_install_is_preferred(tmp_path: Path) -> None:
    cli = tmp_path / "engine" / "bin" / "pulumi"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\necho v3.0.0\n")
    cli.chmod(0o755)
    assert engine.find_cli(tmp_path) == cli


def test_cli_on_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pulumi").write_text("#!/bin/sh\n")
    (bindir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    assert engine.find_cli(tmp_path / "state") == bindir / "pulumi"


def test_pins_follow_the_installed_sdks() -> None:
    from importlib.metadata import version

    assert engine.sdk_version() == version("pulumi")
    assert engine.docker_plugin_version() == version("pulumi_docker")


@pytest.mark.skipif(shutil.which("pulumi") is not None, reason="a Pulumi CLI is on PATH here")
def test_engine_install_without_network_is_one_clear_line(tmp_path: Path) -> None:
    from tests.conftest import run_hosting

    (tmp_path / "hosting.yaml").write_text(
        "version: 1\nplatform: {name: p, domain: a.test, public_ipv4: 127.0.0.1}\n"
    )
    # an unroutable proxy makes the download fail fast and offline, whatever the machine
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    out = run_hosting("engine", "install", cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not install the Pulumi CLI")
