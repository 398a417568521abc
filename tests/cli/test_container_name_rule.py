"""How `status`, `logs` and `credentials` find a deployment's containers, as the README says:
among the containers labelled `hosting.*`, by name, `<platform>_<tenant>_<deployment>_<n>`.
The labels do not name the platform, so a container with the right labels but another name
(another platform's, or a hand-made one) is not the deployment's."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_hosting

IMAGE = "hosting-test/busybox:latest"


def test_readme_gives_the_rule_the_commands_follow() -> None:
    text = " ".join((REPO / "README.md").read_text().split())
    assert "they read the containers by their labels" not in text
    assert re.search(
        r"`status`, `credentials` and `logs` need no engine: they find a deployment's containers "
        r"among those labelled `hosting\.\*` by name, `<platform>_<tenant>_<deployment>_<n>`",
        text,
    )


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"t{secrets.token_hex(4)}"
    text = (REPO / "hosting.yaml").read_text().replace("name: demo ", f"name: {name} ")
    (tmp_path / "hosting.yaml").write_text(text.replace("./examples/", f"{REPO}/examples/"))
    yield tmp_path, name


def _run(name: str, tenant: str, deployment: str) -> None:
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", f"hosting.tenant={tenant}",
         "--label", f"hosting.deployment={deployment}", "--label", "hosting.type=web",
         IMAGE, "sleep", "300"],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.docker
def test_labels_without_the_name_are_not_the_deployment(
    docker_engine: str, platform: tuple[Path, str]
) -> None:
    folder, name = platform
    stray, ours = f"{name}x_stray", f"{name}_acme_shop_0"
    try:
        _run(stray, "acme", "shop")
        status = run_hosting("status", "--tenant", "acme", "--json", cwd=folder)
        assert status.returncode == 0, status.stderr
        rows = {r["deployment"]: r for r in json.loads(status.stdout)["deployments"]}
        assert (rows["shop"]["status"], rows["shop"]["replicas_running"]) == ("pending", 0)
        logs = run_hosting("logs", "acme/shop", cwd=folder)
        assert logs.returncode == 1 and "has no containers" in logs.stderr

        _run(ours, "acme", "shop")
        status = run_hosting("status", "--tenant", "acme", "--json", cwd=folder)
        rows = {r["deployment"]: r for r in json.loads(status.stdout)["deployments"]}
        assert rows["shop"]["replicas_running"] == 1
        assert run_hosting("logs", "acme/shop", cwd=folder).returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", stray, ours], capture_output=True)
