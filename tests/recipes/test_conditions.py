"""The recipes' conditions, evaluated as GitHub and GitLab would: a fork never reaches the
hosting machine or a secret, and only a merge applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.recipes.runner import evaluate, gitlab_rule_matches, job_runs

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"


def event(action: str, *, fork: bool, merged: bool = False) -> dict[str, Any]:
    head_repo = "mallory/infra" if fork else "acme/infra"
    return {
        "action": action,
        "repository": {"full_name": "acme/infra"},
        "pull_request": {
            "number": 7,
            "merged": merged,
            "head": {"sha": "1" * 40, "repo": {"full_name": head_repo}},
        },
    }


def github_jobs_running(ev: dict[str, Any]) -> set[str]:
    doc = yaml.safe_load(GITHUB.read_text())
    context = {"github": {"event": ev, "repository": "acme/infra", "event_name": "pull_request"}}
    return {name for name, job in doc["jobs"].items() if job_runs(job.get("if"), context)}


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        (event("opened", fork=False), {"preview"}),
        (event("synchronize", fork=False), {"preview"}),
        (event("closed", fork=False, merged=True), {"apply"}),
        (event("closed", fork=False, merged=False), set()),
        (event("opened", fork=True), set()),
        (event("synchronize", fork=True), set()),
        (event("closed", fork=True, merged=True), set()),
    ],
)
def test_github_runs_preview_on_own_pull_requests_and_apply_on_their_merge(
    ev: dict[str, Any], expected: set[str]
) -> None:
    assert github_jobs_running(ev) == expected


def test_every_github_job_that_reads_a_secret_is_closed_to_forks() -> None:
    doc = yaml.safe_load(GITHUB.read_text())
    with_secrets = [n for n, job in doc["jobs"].items() if "secrets." in yaml.safe_dump(job)]
    assert with_secrets == ["preview", "apply"]
    assert "secrets." not in yaml.safe_dump({k: v for k, v in doc.items() if k != "jobs"})
    for action in ("opened", "synchronize", "reopened", "closed"):
        for merged in (False, True):
            assert github_jobs_running(event(action, fork=True, merged=merged)) == set()


def test_the_expression_reader_follows_github_rules() -> None:
    context = {"github": {"event": {"action": "Closed", "n": 0}}}
    assert evaluate("github.event.action == 'closed'", context) is True  # case-insensitive
    assert evaluate("!github.event.missing", context) is True
    assert evaluate("github.event.n || 'fallback'", context) == "fallback"
    assert evaluate("(github.event.action != 'closed') && true", context) is False


def gitlab_rules(job: str) -> list[str]:
    doc = yaml.safe_load(GITLAB.read_text())
    return [rule["if"] for rule in doc[job]["rules"]]


def gitlab_runs(job: str, variables: dict[str, str]) -> bool:
    return any(gitlab_rule_matches(rule, variables) for rule in gitlab_rules(job))


OWN_MR = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_PROJECT_ID": "42",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "42",
    "CI_DEFAULT_BRANCH": "main",
}
FORK_MR = {**OWN_MR, "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "99"}
MAIN_PUSH = {
    "CI_PIPELINE_SOURCE": "push",
    "CI_PROJECT_ID": "42",
    "CI_COMMIT_BRANCH": "main",
    "CI_DEFAULT_BRANCH": "main",
}
BRANCH_PUSH = {**MAIN_PUSH, "CI_COMMIT_BRANCH": "feature"}


@pytest.mark.parametrize(
    ("variables", "plan", "apply"),
    [
        (OWN_MR, True, False),
        (FORK_MR, False, False),
        (MAIN_PUSH, False, True),
        (BRANCH_PUSH, False, False),
    ],
)
def test_gitlab_plans_own_merge_requests_and_applies_on_the_default_branch(
    variables: dict[str, str], plan: bool, apply: bool
) -> None:
    assert (gitlab_runs("plan", variables), gitlab_runs("apply", variables)) == (plan, apply)
