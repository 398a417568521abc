"""Both CI recipes run end to end on the real engine: their shell steps in order, with their
`env:`, in fresh checkouts, installing the pinned hosting into a fresh virtual environment
(offline, from a local wheelhouse), planning on the pull request and applying the reviewed
plan on merge, or refusing it as stale."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hosting.spec import names
from tests.conftest import require
from tests.engine.conftest import PASSPHRASE, PLATFORM, remove_leftovers
from tests.recipes.runner import Machine, machine_env, run_github_job, run_gitlab_job

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"
TENANT = """
  acme:
    name: Acme
    email: ops@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      site:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        env: {{GREETING: {greeting}}}
        secrets: {{SESSION_KEY: {{env: SHOP_SESSION_KEY}}}}
        health: {{path: /healthz, interval_s: 1}}
"""
SECRETS = {
    "HOSTING_PASSPHRASE": PASSPHRASE,
    "SHOP_SESSION_KEY": "recipe-session-key-4b7d",
    "UMBRELLA_PAYMENTS_TOKEN": "recipe-payments-token-91ce",
}


class Project:
    """The user's repository: hosting.yaml on `main`, changed on branches and merged."""

    def __init__(self, folder: Path, platform: str) -> None:
        self.folder, self.platform = folder, platform
        self.git("init", "-q", "-b", "main")
        self.commit("one", "first")

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def commit(self, greeting: str, message: str, header: str = "") -> str:
        spec = header + PLATFORM.format(platform=self.platform) + TENANT.format(greeting=greeting)
        (self.folder / "hosting.yaml").write_text(spec)
        self.git("add", "hosting.yaml")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def merge(self, branch: str) -> str:
        self.git("checkout", "-q", "main")
        self.git("merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
        return self.git("rev-parse", "HEAD")


def pr_event(action: str, head: str, merge: str | None = None) -> dict[str, Any]:
    return {
        "action": action,
        "repository": {"full_name": "acme/infra"},
        "pull_request": {
            "number": 7,
            "merged": merge is not None,
            "merge_commit_sha": merge,
            "head": {"sha": head, "repo": {"full_name": "acme/infra"}},
        },
    }


def greeting(platform: str) -> str:
    name = names.container_name(platform, "acme", "site", 0)
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Config.Env}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    env: list[str] = json.loads(out.stdout)
    return next(e.split("=", 1)[1] for e in env if e.startswith("GREETING="))


@pytest.fixture
def machine(engine: str, tmp_path: Path) -> Machine:
    wheelhouse = os.environ.get("HOSTING_WHEELHOUSE", "")
    require(
        bool(wheelhouse) and Path(wheelhouse).is_dir(),
        "a wheelhouse of hosting's dependencies in $HOSTING_WHEELHOUSE (.ci/run builds it)",
    )
    ours = tmp_path / "wheels"
    subprocess.run(
        ["python3", "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
         "--find-links", wheelhouse, "-w", str(ours), str(REPO)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    project = tmp_path / "repo"
    project.mkdir()
    env = machine_env()
    env.update(
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=f"{ours} {wheelhouse}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HOSTING_ENGINE_DIR=engine,
    )
    state, plans = tmp_path / "state", tmp_path / "plans"
    plans.mkdir()
    overrides = {"HOSTING_STATE_DIR": str(state), "PLANS_DIR": str(plans)}
    # The preview runner's user reads the state and the engine and writes neither.
    read_only = {"hosting-preview": [state, Path(engine)]}
    return Machine(tmp_path / "runner", project, env, overrides, read_only)


def first_apply(machine: Machine) -> None:
    """The operator's one-time setup, as the apply user: the stack that previews read."""
    out = subprocess.run(
        ["python3", "-m", "hosting", "--state-dir", machine.overrides["HOSTING_STATE_DIR"],
         "apply", "--yes"],
        cwd=machine.repo,
        env={**os.environ, **SECRETS},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
        if not p.is_symlink()
    }


def destroy(machine: Machine, folder: Path) -> None:
    subprocess.run(
        ["python3", "-m", "hosting", "--state-dir", machine.overrides["HOSTING_STATE_DIR"],
         "destroy", "--yes", "--delete-data"],
        cwd=folder,
        env={**os.environ, **SECRETS},
        capture_output=True,
    )  # fmt: skip


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for value in SECRETS.values():
            assert value not in text


def test_github_previews_comments_once_applies_the_merge_and_refuses_a_stale_plan(
    machine: Machine,
) -> None:
    platform = "g" + secrets.token_hex(3)
    repo = Project(machine.repo, platform)
    try:
        first_apply(machine)
        assert greeting(platform) == "one"
        state = Path(machine.overrides["HOSTING_STATE_DIR"])
        before = tree_digest(state)
        repo.git("checkout", "-q", "-b", "change")
        head = repo.commit("two", "greet two")
        preview = run_github_job(machine, GITHUB, "preview", pr_event("opened", head), SECRETS)
        assert preview.ran and preview.returncode == 0, preview.output
        assert tree_digest(state) == before  # read-only for real: nothing written
        comment = machine.comments / "7-hosting-plan.md"
        assert "**Plan: 0 to create" in comment.read_text()
        assert "acme_site_0" in comment.read_text()
        assert (machine.artifacts / "hosting-plan" / "plan.bin").is_file()

        head = repo.commit("three", "greet three")  # a second push updates the one comment
        preview = run_github_job(machine, GITHUB, "preview", pr_event("synchronize", head), SECRETS)
        assert preview.returncode == 0, preview.output
        assert [p.name for p in machine.comments.iterdir()] == ["7-hosting-plan.md"]
        assert "acme_site_0" in comment.read_text()

        merge = repo.merge("change")
        apply = run_github_job(machine, GITHUB, "apply", pr_event("closed", head, merge), SECRETS)
        assert apply.ran and apply.returncode == 0, apply.output
        assert greeting(platform) == "three"

        # A second pull request, planned; then main moves on before it merges: stale.
        repo.git("checkout", "-q", "-b", "later")
        head = repo.commit("four", "greet four")
        assert (
            run_github_job(machine, GITHUB, "preview", pr_event("opened", head), SECRETS).returncode
            == 0
        )
        repo.git("checkout", "-q", "main")
        repo.commit("three", "a comment on main", header="# owned by ops\n")
        merge = repo.merge("later")
        apply = run_github_job(machine, GITHUB, "apply", pr_event("closed", head, merge), SECRETS)
        assert apply.returncode == 1
        assert "is stale: hosting.yaml changed since it was made" in apply.output
        assert greeting(platform) == "three"
        assert_no_secret(preview.output, apply.output, comment.read_text())
    finally:
        destroy(machine, machine.repo)
        remove_leftovers(platform + "_")


def test_gitlab_plans_the_merge_request_and_applies_it_on_main(machine: Machine) -> None:
    platform = "l" + secrets.token_hex(3)
    repo = Project(machine.repo, platform)
    try:
        first_apply(machine)
        repo.git("checkout", "-q", "-b", "change")
        head = repo.commit("five", "greet five")
        variables = {
            **SECRETS,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "42",
            "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_SHA": head,
        }
        plan = run_gitlab_job(machine, GITLAB, "plan", variables, head)
        assert plan.ran and plan.returncode == 0, plan.output
        assert plan.workspace is not None and (plan.workspace / "plan.bin").is_file()
        assert "**Plan: 0 to create" in (plan.workspace / "plan.md").read_text()

        merge = repo.merge("change")
        pushed = {
            **variables,
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SHA": merge,
        }
        del pushed["CI_MERGE_REQUEST_SOURCE_PROJECT_ID"]
        apply = run_gitlab_job(machine, GITLAB, "apply", pushed, merge)
        assert apply.ran and apply.returncode == 0, apply.output
        assert greeting(platform) == "five"
        assert_no_secret(plan.output, apply.output)
    finally:
        destroy(machine, machine.repo)
        remove_leftovers(platform + "_")
