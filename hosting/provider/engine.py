"""Where the Pulumi CLI comes from: PATH or the state directory, pinned to the SDK's version."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hosting.errors import EngineMissingError


def sdk_version() -> str:
    return version("pulumi")


def docker_plugin_version() -> str:
    return version("pulumi_docker")


def install_root(state_dir: Path) -> Path:
    return state_dir / "engine"


def pulumi_home(state_dir: Path) -> Path:
    """Plugins live here (not in ~/.pulumi), so a state directory is self-contained."""
    return install_root(state_dir) / "home"


def missing_message() -> str:
    return (
        f"the Pulumi CLI is not installed: run `hosting engine install` (needs network) or put "
        f"pulumi v{sdk_version()} on PATH, with the docker plugin v{docker_plugin_version()} "
        f"(`pulumi plugin install resource docker v{docker_plugin_version()}`)"
    )


def find_cli(state_dir: Path) -> Path | None:
    """The `pulumi` binary: the state directory's own install first, then PATH."""
    local = install_root(state_dir) / "bin" / "pulumi"
    if local.is_file():
        return local
    found = shutil.which("pulumi")
    return Path(found) if found else None


def command(state_dir: Path) -> Any:
    """A `pulumi.automation.PulumiCommand` for the CLI found, or EngineMissingError."""
    cli = find_cli(state_dir)
    if cli is None:
        raise EngineMissingError(missing_message())
    from pulumi import automation as auto

    local = install_root(state_dir)
    # root holds bin/pulumi; None means PATH. The version check tolerates a newer CLI.
    root = str(local) if cli.is_relative_to(local) else None
    return auto.PulumiCommand(root=root, skip_version_check=True)


def install(state_dir: Path) -> Path:
    """Install the pinned CLI into the state directory (needs network)."""
    from pulumi import automation as auto
    from semver import VersionInfo

    root = install_root(state_dir)
    try:
        auto.PulumiCommand.install(root=str(root), version=VersionInfo.parse(sdk_version()))
    except Exception as exc:  # the installer raises bare exceptions on network failure
        raise EngineMissingError(
            f"could not install the Pulumi CLI v{sdk_version()} into {root}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            "this needs network access; otherwise install pulumi on PATH by hand",
        ) from None
    cli = root / "bin" / "pulumi"
    plugin = subprocess.run(
        [str(cli), "plugin", "install", "resource", "docker", f"v{docker_plugin_version()}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PULUMI_HOME": str(pulumi_home(state_dir))},
        check=False,
    )
    if plugin.returncode != 0:
        raise EngineMissingError(
            f"could not install the docker plugin v{docker_plugin_version()}: "
            + (plugin.stderr.strip().splitlines() or ["unknown error"])[-1],
            "this needs network access",
        )
    return cli
