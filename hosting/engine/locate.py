"""Where the engine lives: `$HOSTING_ENGINE_DIR`, else `<state dir>/engine`, else PATH.

One engine directory holds `bin/pulumi` and `home/` (PULUMI_HOME: the docker plugin and the
CLI's own bookkeeping). CI points HOSTING_ENGINE_DIR at a cache shared by every state
directory, so one build serves every stack on the machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hosting.engine.pins import CLI_VERSION, DOCKER_PLUGIN_VERSION
from hosting.errors import EngineMissingError

ENGINE_DIR_ENV = "HOSTING_ENGINE_DIR"


def install_root(state_dir: Path) -> Path:
    override = os.environ.get(ENGINE_DIR_ENV)
    return Path(override).resolve() if override else state_dir / "engine"


def pulumi_home(state_dir: Path) -> Path:
    """Plugins live here (not in ~/.pulumi), so an engine directory is self-contained."""
    return install_root(state_dir) / "home"


def plugin_path(state_dir: Path) -> Path:
    """Where `pulumi plugin install` puts the docker plugin of the pinned version."""
    folder = f"resource-docker-v{DOCKER_PLUGIN_VERSION}"
    return pulumi_home(state_dir) / "plugins" / folder / "pulumi-resource-docker"


def missing_message() -> str:
    return (
        f"the Pulumi engine is not installed: run `hosting engine build` (needs Go and its "
        f"module proxy) or `hosting engine install` (needs the download site); it provides "
        f"pulumi v{CLI_VERSION} and the docker plugin v{DOCKER_PLUGIN_VERSION}"
    )


def find_cli(state_dir: Path) -> Path | None:
    """The `pulumi` binary: the engine directory's own first, then PATH."""
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


def require_plugin(state_dir: Path) -> None:
    """The docker plugin must be installed already: the engine would try to download it."""
    if not plugin_path(state_dir).is_file():
        raise EngineMissingError(
            f"the docker plugin v{DOCKER_PLUGIN_VERSION} is not installed in "
            f"{pulumi_home(state_dir)}",
            "run `hosting engine build` (or `hosting engine install` where downloads work)",
        )
