"""Finding, building and installing the Pulumi engine, and what a user hears when it is missing."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from hosting.engine import build, locate, pins
from hosting.errors import EngineMissingError
from tests.conftest import REPO


def test_missing_engine_names_exactly_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(locate.ENGINE_DIR_ENV, raising=False)
    with pytest.raises(EngineMissingError) as err:
        locate.command(tmp_path)
    text = err.value.message
    assert "hosting engine build" in text and "hosting engine install" in text
    assert "pulumi v3.274.1" in text and "docker plugin v5.1.0" in text
    assert "\n" not in text


def test_missing_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(locate.ENGINE_DIR_ENV, raising=False)
    with pytest.raises(EngineMissingError) as err:
        locate.require_plugin(tmp_path)
    assert "docker plugin v5.1.0" in err.value.message
    assert "hosting engine build" in (err.value.hint or "")


def test_engine_dir_install_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(locate.ENGINE_DIR_ENV, raising=False)
    cli = tmp_path / "engine" / "bin" / "pulumi"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\necho v3.0.0\n")
    cli.chmod(0o755)
    assert locate.find_cli(tmp_path) == cli


def test_engine_dir_variable_overrides_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "cache" / "engine"
    monkeypatch.setenv(locate.ENGINE_DIR_ENV, str(shared))
    assert locate.pulumi_home(tmp_path / "state") == shared / "home"
    assert locate.plugin_path(tmp_path / "state") == (
        shared / "home" / "plugins" / "resource-docker-v5.1.0" / "pulumi-resource-docker"
    )


def test_cli_on_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(locate.ENGINE_DIR_ENV, raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pulumi").write_text("#!/bin/sh\n")
    (bindir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    assert locate.find_cli(tmp_path / "state") == bindir / "pulumi"


def test_pins_match_pyproject_and_the_go_modules() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"pulumi=={pins.PYTHON_SDK_VERSION}" in deps
    assert f"pulumi-docker=={pins.DOCKER_PLUGIN_VERSION}" in deps
    cli_mod = (REPO / "hosting/engine/go/cli/go.mod").read_text()
    assert re.search(rf"github.com/pulumi/pulumi/pkg/v3 v{re.escape(pins.CLI_VERSION)}\b", cli_mod)
    assert re.search(rf"github.com/pulumi/pulumi/sdk/v3 v{re.escape(pins.CLI_VERSION)}\b", cli_mod)


def test_go_sources_ship_with_the_package() -> None:
    src = build.sources()
    for name in (
        "cli/go.mod",
        "cli/go.sum",
        "docker/go.mod",
        "docker/go.sum",
        "docker/shim/shim.go",
        "docker/cmd/pulumi-resource-docker/main.go",
    ):
        assert (src / name).is_file(), name


def test_source_key_changes_with_any_source_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "go.mod").write_text("module x\n")
    first = build.source_key(tmp_path)
    assert build.source_key(tmp_path) == first
    (tmp_path / "a" / "go.mod").write_text("module y\n")
    assert build.source_key(tmp_path) != first


def test_build_without_go_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(locate.ENGINE_DIR_ENV, raising=False)
    with pytest.raises(EngineMissingError) as err:
        build.build(tmp_path)
    assert "needs the go command" in err.value.message


def test_a_proxy_refusal_names_the_module() -> None:
    output = (
        "$ go build ...\n"
        "go: downloading github.com/x/y v1.0.0\n"
        "go: github.com/x/y@v1.0.0: reading https://proxy.example/github.com/x/y/@v/v1.0.0.zip:"
        " 403 Forbidden\n\tserver response: not available\n"
    )
    assert build._reason(output) == (
        "the Go module proxy refused github.com/x/y@v1.0.0 (403 Forbidden)"
    )


def test_a_compile_error_is_the_reason() -> None:
    output = "$ go build\n# pkg\n./main.go:3:2: undefined: thing\ngo: error building\n"
    assert build._reason(output) == "./main.go:3:2: undefined: thing"


def test_without_a_compile_error_the_go_line_is_the_reason() -> None:
    output = "$ go build\ngo: downloading a v1\ngo: updates to go.mod needed\nexit\n"
    assert build._reason(output) == "go: updates to go.mod needed"
