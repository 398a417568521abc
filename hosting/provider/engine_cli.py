"""The Pulumi CLI run directly, for what the Automation API would pass as arguments: a
secret given on stdin never shows in a process list."""

from __future__ import annotations

import os
import subprocess
from typing import Any


def run_with_stdin(workspace: Any, args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    """`pulumi ARGS` in the workspace, with its environment, reading `stdin`."""
    home = {"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}
    return subprocess.run(
        [workspace.pulumi_command.command, *args, "--non-interactive"],
        cwd=workspace.work_dir,
        env={**os.environ, **home, **workspace.env_vars, "PULUMI_AUTOMATION_API": "true"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
