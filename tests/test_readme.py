"""README.md's promises that a test can hold it to: the CI recipe works for the example
repository as written, and the CLI reference lists exactly the commands and options that
`hosting --help` has (as sqlite-utils checks its docs against click)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from hosting.spec import load
from hosting.spec.models import DatabaseDeployment
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _ci_recipe() -> dict[str, Any]:
    block = re.search(r"```yaml\n(# \.github/workflows/hosting\.yml\n.*?)```", README, re.S)
    assert block, "README has no CI recipe (# .github/workflows/hosting.yml)"
    recipe: dict[str, Any] = yaml.safe_load(block.group(1))
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


def test_ci_recipe_installs_by_name_and_version_and_builds_the_engine() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, job in _ci_recipe()["jobs"].items():
        runs = "\n".join(_runs(job))
        # The recipe's repository holds hosting.yaml, not this package: `pip install .` fails.
        assert not re.search(r"pip install \.(\s|$)", runs), name
        assert f"hosting=={version}" in runs, f"{name} does not install hosting=={version}"
        engine = runs.find("hosting engine build")
        assert engine != -1, f"{name} has no `hosting engine build` step"
        first_use = min(
            i for i in (runs.find("hosting plan"), runs.find("hosting apply")) if i >= 0
        )
        assert engine < first_use, f"{name} builds the engine after using it"


def test_ci_recipe_triggers_on_every_folder_the_example_names() -> None:
    folders, _ = _example_inputs()
    assert folders, "the example names no build context or static folder"
    on = _ci_recipe()[True]  # YAML 1.1 reads the key `on` as true
    for event in ("pull_request", "push"):
        paths = on[event]["paths"]
        assert "hosting.yaml" in paths
        for folder in folders:
            assert any(fnmatch.fnmatch(f"{folder}/x/y.txt", p) for p in paths), (event, folder)


def test_ci_recipe_passes_every_secret_the_example_reads() -> None:
    _, env = _example_inputs()
    for name, job in _ci_recipe()["jobs"].items():
        assert env <= set(job["env"]), f"{name} misses {sorted(env - set(job['env']))}"


def test_environment_variables_of_the_recipe_are_documented_in_the_cli_reference() -> None:
    reference = README[README.index("## CLI reference") :]
    for job in _ci_recipe()["jobs"].values():
        for var in job["env"]:
            if var.startswith("HOSTING_"):
                assert f"${var}" in reference, f"${var} is not in the CLI reference"
