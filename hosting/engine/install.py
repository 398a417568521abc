"""`hosting engine install`: download the pinned CLI and plugin, for machines that can."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hosting.engine.locate import install_root, pulumi_home
from hosting.engine.pins import CLI_VERSION, DOCKER_PLUGIN_VERSION
from hosting.errors import EngineMissingError


def install(state_dir: Path) -> Path:
    """Install the pinned CLI and docker plugin into the engine directory (needs network)."""
    from pulumi import automation as auto
    from semver import VersionInfo

    root = install_root(state_dir)
    try:
        auto.PulumiCommand.install(root=str(root), version=VersionInfo.parse(CLI_VERSION))
    except Exception as exc:  # the installer raises bare exceptions on network failure
        raise EngineMissingError(
            f"could not install the Pulumi CLI v{CLI_VERSION} into {root}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            "this needs the download site; without it, `hosting engine build` builds it with Go",
        ) from None
    cli = root / "bin" / "pulumi"
    plugin = subprocess.run(
        [str(cli), "plugin", "install", "resource", "docker", f"v{DOCKER_PLUGIN_VERSION}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PULUMI_HOME": str(pulumi_home(state_dir))},
        check=False,
    )
    if plugin.returncode != 0:
        raise EngineMissingError(
            f"could not install the docker plugin v{DOCKER_PLUGIN_VERSION}: "
            + (plugin.stderr.strip().splitlines() or ["unknown error"])[-1],
            "this needs the download site; without it, `hosting engine build` builds it with Go",
        )
    return cli
