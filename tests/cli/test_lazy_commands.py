"""Command modules load only when one of their commands runs (issue 14: CI runs the CLI many
times per job), and the lazy map in hosting.cli says what the modules say."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hosting.cli import COMMANDS, cli
from tests.conftest import REPO

# What `--help` and `validate` never need: the heavy libraries of other commands.
HEAVY = ("duckdb", "jinja2", "dns", "pulumi", "pulumi_docker")
COMMAND_MODULE = re.compile(r"^hosting\.cli\.\w+_commands$")


# Runs the real entry point (`python -m hosting ARGS`) and writes sys.modules at exit. (Not
# `-X importtime`: it misses modules imported through importlib, as lazy groups import.)
PROBE = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["hosting", *sys.argv[2:]]
runpy.run_module("hosting", run_name="__main__", alter_sys=True)
"""


def imported(tmp_path: Path, *args: str) -> set[str]:
    """Every module loaded by the time `hosting ARGS` exits, in a fresh interpreter."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(out.read_text()))
    assert "hosting.cli" in modules  # the listing is real: the CLI itself is in it
    return modules


def top(modules: set[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules}


def test_help_imports_no_command_module_and_no_spec(tmp_path: Path) -> None:
    modules = imported(tmp_path, "--help")
    assert not {m for m in modules if COMMAND_MODULE.match(m)}
    assert not top(modules) & set(HEAVY)
    assert "hosting.spec" not in modules  # nor pydantic's models: --help reads no file


def test_validate_imports_its_own_module_only(tmp_path: Path) -> None:
    modules = imported(tmp_path, "-f", str(REPO / "hosting.yaml"), "validate")
    assert {m for m in modules if COMMAND_MODULE.match(m)} == {"hosting.cli.spec_commands"}
    assert not top(modules) & set(HEAVY)


def _help(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# Every module loaded, and the help laid out by click's own Group, not by the lazy group.
CLICKS_OWN = """
import types, click
from hosting.cli import cli, main
cli.load_all()
cli.format_commands = types.MethodType(click.Group.format_commands, cli)
main(['--help'])
"""


def test_help_lists_every_command_with_its_modules_own_short_help() -> None:
    lazy = _help("from hosting.cli import main; main(['--help'])")
    loaded = _help(CLICKS_OWN)
    assert "validate " in lazy and "invoice " in lazy
    assert lazy == loaded


def test_the_map_names_each_command_and_its_module() -> None:
    cli.load_all()
    real = {name: cmd.callback.__module__ for name, cmd in cli.commands.items() if cmd.callback}
    mapped = {name: f"hosting.cli.{module}" for name, (module, _) in COMMANDS.items()}
    missing = {name: module for name, module in real.items() if mapped.get(name) != module}
    assert not missing, f"add these to COMMANDS in hosting/cli/__init__.py: {missing}"
    # An entry whose module is absent (still being written) is tolerated, and not offered.
    wrong = {
        name
        for name, module in mapped.items()
        if importlib.util.find_spec(module) is not None and name not in real
    }
    assert not wrong, f"COMMANDS names commands their modules do not define: {wrong}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help(name: str) -> None:
    """Each command found through the lazy map, and every subcommand of it, shows its help."""
    if importlib.util.find_spec(f"hosting.cli.{COMMANDS[name][0]}") is None:
        pytest.skip(f"hosting.cli.{COMMANDS[name][0]} is not written yet")
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    paths: list[tuple[str, ...]] = [(name,)]
    if isinstance(command, click.Group):
        paths += [(name, sub) for sub in command.commands]
    for path in paths:
        result = CliRunner().invoke(cli, [*path, "--help"], prog_name="hosting")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: hosting {' '.join(path)} ")
