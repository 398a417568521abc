"""README.md's promises that a test can hold it to: the CI recipe works for the example
repository as written, and the CLI reference lists exactly the commands and options that
`hosting --help` has (as sqlite-utils checks its docs against click)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import yaml

from hosting.spec import load
from hosting.spec.models import DatabaseDeployment
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


GITHUB_RECIPE = REPO / "examples" / "ci" / "github-actions.yml"


def _ci_recipe() -> dict[Any, Any]:
    """The GitHub recipe, which README shows verbatim (tests/engine/test_ci_recipes.py runs it)."""
    text = GITHUB_RECIPE.read_text()
    assert f"```yaml\n{text}```" in README, (
        "README's CI recipe is not examples/ci/github-actions.yml"
    )
    recipe: dict[Any, Any] = yaml.safe_load(text)
    return recipe


def _example_inputs() -> tuple[set[str], set[str]]:
    """The example's folders that change what apply does, and the env vars it reads."""
    spec = load(REPO / "hosting.yaml")
    folders: set[str] = set()
    env = {"HOSTING_PASSPHRASE"}
    for tenant in spec.tenants.values():
        for dep in tenant.deployments.values():
            if isinstance(dep, DatabaseDeployment):
                continue
            if dep.static is not None:
                folders.add(str(Path(dep.static)))
            if dep.build is not None:
                folders.add(str(Path(dep.build.context)))
            env |= {ref.env for ref in dep.secrets.values() if ref.env}
    return folders, env


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step.get("run", "")) for step in job["steps"]]


def test_ci_recipe_installs_by_name_and_version_and_only_apply_builds_the_engine() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    recipe = _ci_recipe()
    assert recipe["env"]["PINNED_VERSION"] == version
    for name, job in recipe["jobs"].items():
        runs = "\n".join(_runs(job))
        # The recipe's repository holds hosting.yaml, not this package: `pip install .` fails.
        assert not re.search(r"pip install \.(\s|$)", runs), name
        assert '"hosting==$PINNED_VERSION"' in runs, f"{name} does not install the pinned hosting"
    apply = "\n".join(_runs(recipe["jobs"]["apply"]))
    engine = apply.find("hosting engine build")
    assert -1 < engine < apply.find("hosting apply"), "apply must build the engine before it"
    # The preview runs with a read-only state credential: it could not write an engine.
    assert "hosting-preview" in recipe["jobs"]["preview"]["runs-on"]
    assert "hosting engine build" not in "\n".join(_runs(recipe["jobs"]["preview"]))


def test_ci_recipe_triggers_on_every_folder_the_example_names() -> None:
    folders, _ = _example_inputs()
    assert folders, "the example names no build context or static folder"
    on = _ci_recipe()[True]  # YAML 1.1 reads the key `on` as true
    paths = on["pull_request"]["paths"]
    assert "hosting.yaml" in paths
    for folder in folders:
        assert any(fnmatch.fnmatch(f"{folder}/x/y.txt", p) for p in paths), folder


def test_ci_recipe_passes_every_secret_the_example_reads() -> None:
    _, env = _example_inputs()
    for name, job in _ci_recipe()["jobs"].items():
        assert env <= set(job["env"]), f"{name} misses {sorted(env - set(job['env']))}"


def test_environment_variables_of_the_recipe_are_documented_in_the_cli_reference() -> None:
    reference = README[README.index("## CLI reference") :]
    recipe = _ci_recipe()
    for env in [recipe["env"], *(job["env"] for job in recipe["jobs"].values())]:
        for var in env:
            if var.startswith("HOSTING_"):
                assert f"${var}" in reference, f"${var} is not in the CLI reference"


# -- the CLI reference against click's command tree -------------------------------------------
def _cli() -> click.Group:
    """The whole command tree: command modules load lazily, so load them all."""
    from hosting.cli import cli

    cli.load_all()
    return cli


def _reference() -> str:
    start = README.index("## CLI reference")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def _documented() -> dict[str, set[str]]:
    """Each command the reference's tables name ("hosting invoice run"), with its options."""
    found: dict[str, set[str]] = {}
    for row in re.findall(r"^\| `(hosting (?:[^`])*)` \|", _reference(), re.M):
        path, options = _resolve(row.replace("\\|", "|").split()[1:])
        found.setdefault(path, set()).update(options)
    return found


def _resolve(words: list[str]) -> tuple[str, set[str]]:
    cli = _cli()

    command: click.Command = cli
    path = ["hosting"]
    for word in words:
        if not isinstance(command, click.Group) or word.startswith(("-", "[")):
            break
        if word in command.commands:
            command, path = command.commands[word], [*path, word]
        elif word.isupper() and "show" in command.commands:  # `subscription TENANT` is show
            command, path = command.commands["show"], [*path, "show"]
            break
        else:
            break
    options = {m for w in words for m in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", w)}
    return " ".join(path), options


def _commands() -> dict[str, click.Command]:
    """Every command a user can run: leaves, and groups that run without a subcommand."""
    cli = _cli()

    out: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                out[path] = command
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
        else:
            out[path] = command

    walk(cli, "hosting")
    return out


def _options(command: click.Command) -> list[list[str]]:
    return [p.opts for p in command.params if isinstance(p, click.Option) and p.opts != ["--help"]]


def test_cli_reference_names_every_command_and_only_real_ones() -> None:
    documented, real = set(_documented()), set(_commands())
    assert not real - documented, (
        f"commands missing from README's CLI reference: {real - documented}"
    )
    assert not documented - real, (
        f"README documents commands that do not exist: {documented - real}"
    )


def test_cli_reference_gives_each_command_exactly_its_options() -> None:
    documented, real = _documented(), _commands()
    problems = []
    for path in sorted(set(documented) & set(real)):
        options = _options(real[path])
        for opts in options:
            if not set(opts) & documented[path]:
                problems.append(f"{path}: README does not show {'/'.join(opts)}")
        for token in sorted(documented[path]):
            if not any(token in opts for opts in options):
                problems.append(f"{path}: README shows {token}, which it does not take")
    assert not problems, "\n".join(problems)


def test_cli_reference_gives_the_global_options() -> None:
    cli = _cli()

    usage = re.search(r"^`hosting (\[.*?) COMMAND …`$", _reference(), re.M)
    assert usage, "the CLI reference has no `hosting [options] COMMAND …` line"
    shown = set(re.findall(r"(--?[a-z][a-z-]*)", usage.group(1)))
    for opts in _options(cli):
        assert set(opts) & shown, f"the global option {'/'.join(opts)} is not shown"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text)


def test_status_words_agree_between_help_and_readme() -> None:
    cli = _cli()

    status = cli.commands["status"]
    assert isinstance(status, click.Command) and status.help
    in_help = re.search(r"status \(([^)]*)\)", status.help)
    assert in_help, status.help
    row = re.search(r"^\| `hosting status [^|]*` \| ([a-z /]+),", _reference(), re.M)
    assert row, "no status row in the CLI reference"
    assert _words(in_help.group(1)) == _words(row.group(1))
