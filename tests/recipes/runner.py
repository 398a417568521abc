"""A small runner for the CI recipes in examples/ci, so they are run, not only read.

It does what GitHub Actions and GitLab CI do with a job, as far as the recipes use it: decide
from the event whether the job runs (`if:` / `rules:`), build the job's environment, and run
its shell steps in order, in a fresh checkout, stopping at the first failure. The few
actions the GitHub recipe uses are done locally: checkout (a git clone at the event's
commit), upload-artifact (a copy into the runner's artifact folder) and the sticky
pull-request comment (one file per pull request and header). Any other action is an error,
so a recipe cannot come to depend on a step no test runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# -- GitHub Actions expressions ---------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\))"
    r"|(?P<word>[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*))"
)


class ExpressionError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """GitHub's expression language as the recipe uses it: literals, context properties,
    `== != && || !` and parentheses, with GitHub's loose equality (case-insensitive strings)."""
    tokens = _tokens(expression)
    pos = 0

    def peek() -> str | None:
        return tokens[pos][1] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def primary() -> Any:
        kind, value = take()
        if value == "(":
            inner = disjunction()
            if take()[1] != ")":
                raise ExpressionError(f"missing ) in {expression!r}")
            return inner
        if value == "!":
            return not truthy(primary())
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value)
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        if kind == "word":
            node: Any = context
            for part in value.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return node
        raise ExpressionError(f"unexpected {value!r} in {expression!r}")

    def comparison() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            op = take()[1]
            right = primary()
            left = equal(left, right) if op == "==" else not equal(left, right)
        return left

    def conjunction() -> Any:
        left = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            left = right if truthy(left) else left
        return left

    def disjunction() -> Any:
        left = conjunction()
        while peek() == "||":
            take()
            right = conjunction()
            left = left if truthy(left) else right
        return left

    result = disjunction()
    if pos != len(tokens):
        raise ExpressionError(f"unexpected {tokens[pos][1]!r} in {expression!r}")
    return result


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, 0.0, "")


def equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    return bool(left == right)


_INTERPOLATION = re.compile(r"\$\{\{(.*?)\}\}")


def interpolate(text: str, context: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        value = evaluate(match.group(1), context)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _INTERPOLATION.sub(one, text)


def job_runs(condition: str | None, context: dict[str, Any]) -> bool:
    if condition is None:
        return True
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return truthy(evaluate(text, context))


# -- running ----------------------------------------------------------------------------------
@dataclass
class Machine:
    """The runner's host: where checkouts, artifacts and comments go, and its environment."""

    root: Path
    repo: Path  # a git repository: the project that holds hosting.yaml
    env: dict[str, str] = field(default_factory=dict)  # the host's own (PATH, engine dir)
    overrides: dict[str, str] = field(default_factory=dict)  # the host's paths for the recipe's
    # Paths that a runner's user may read but not write, by the runner's label (`runs-on`,
    # GitLab `tags`): each step of a job on that runner sees them mounted read-only.
    read_only: dict[str, list[Path]] = field(default_factory=dict)

    def read_only_for(self, labels: str | list[str]) -> list[Path]:
        wanted = [labels] if isinstance(labels, str) else labels
        return [p for label in wanted for p in self.read_only.get(label, [])]

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def comments(self) -> Path:
        return self.root / "comments"


@dataclass
class JobResult:
    ran: bool
    returncode: int = 0
    output: str = ""
    workspace: Path | None = None


def _checkout(machine: Machine, sha: str, workspace: Path) -> None:
    if workspace.exists():
        shutil.rmtree(workspace)
    subprocess.run(
        ["git", "clone", "-q", str(machine.repo), str(workspace)], check=True, capture_output=True
    )
    subprocess.run(
        ["git", "-C", str(workspace), "checkout", "-q", sha], check=True, capture_output=True
    )


def _shell(
    script: str, cwd: Path, env: dict[str, str], read_only: list[Path] | None = None
) -> tuple[int, str]:
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    if read_only:
        # A mount namespace of the step's own: the paths are read-only for it alone.
        mounts = " && ".join(f"mount --bind -o ro {shlex.quote(str(p))} {shlex.quote(str(p))}"
                             for p in read_only)  # fmt: skip
        command = ["unshare", "--mount", "sh", "-c", f"{mounts} && exec {shlex.join(command)}"]
    proc = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _labels(job: dict[str, Any]) -> list[str]:
    labels = job.get("runs-on", [])
    return [labels] if isinstance(labels, str) else list(labels)


def run_github_job(
    machine: Machine, workflow: Path, job: str, event: dict[str, Any], secrets: dict[str, str]
) -> JobResult:
    """Run one job of a GitHub workflow for a `pull_request` event payload."""
    doc = yaml.safe_load(workflow.read_text())
    spec = doc["jobs"][job]
    repository = event["repository"]["full_name"]
    sha = event["pull_request"]["merge_commit_sha"] or event["pull_request"]["head"]["sha"]
    context: dict[str, Any] = {
        "github": {
            "event_name": "pull_request",
            "event": event,
            "repository": repository,
            "sha": sha,
            "token": "runner-token",
        },
        "secrets": secrets,
    }
    if not job_runs(spec.get("if"), context):
        return JobResult(ran=False)
    workspace = machine.root / "work" / job
    temp = machine.root / "temp" / job
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    env = {
        **machine.env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": repository,
        "GITHUB_SHA": sha,
        "RUNNER_TEMP": str(temp),
        # A self-hosted runner's tool cache outlives its jobs: one per runner (its labels).
        "RUNNER_TOOL_CACHE": str(machine.root / "tool" / "-".join(_labels(spec))),
        "GITHUB_PATH": str(temp / "path"),
        "GITHUB_STEP_SUMMARY": str(temp / "summary.md"),
    }
    for scope in (doc.get("env", {}), spec.get("env", {})):
        for key, value in scope.items():
            env[key] = interpolate(str(value), {**context, "env": env})
    env.update(machine.overrides)
    log: list[str] = []
    for step in spec["steps"]:
        if not job_runs(step.get("if"), {**context, "env": env}):
            continue
        step_env = {**env}
        for key, value in step.get("env", {}).items():
            step_env[key] = interpolate(str(value), {**context, "env": env})
        uses = step.get("uses")
        inputs = {k: interpolate(str(v), context) for k, v in step.get("with", {}).items()}
        if uses is not None:
            _action(machine, uses, inputs, event, sha, workspace)
            log.append(f"[uses {uses}]")
            continue
        script = interpolate(step["run"], {**context, "env": env})
        path_file = temp / "path"
        extra = path_file.read_text().split() if path_file.exists() else []
        step_env["PATH"] = ":".join([*reversed(extra), step_env.get("PATH", "")])
        code, output = _shell(
            script, workspace, step_env, machine.read_only_for(spec.get("runs-on", []))
        )
        log.append(f"[run {step.get('name', script.splitlines()[0])}]\n{output}")
        if code != 0:
            return JobResult(True, code, "\n".join(log), workspace)
    return JobResult(True, 0, "\n".join(log), workspace)


def _action(
    machine: Machine,
    uses: str,
    inputs: dict[str, str],
    event: dict[str, Any],
    sha: str,
    workspace: Path,
) -> None:
    name = uses.split("@", 1)[0]
    if name == "actions/checkout":
        _checkout(machine, sha, workspace)
    elif name == "actions/upload-artifact":
        target = machine.artifacts / inputs["name"]
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy(workspace / inputs["path"], target)
    elif name == "marocchino/sticky-pull-request-comment":
        number = event["pull_request"]["number"]
        machine.comments.mkdir(parents=True, exist_ok=True)
        body = (workspace / inputs["path"]).read_text()
        (machine.comments / f"{number}-{inputs['header']}.md").write_text(body)
    else:
        raise AssertionError(f"the runner does not know the action {uses}: add it here")


# -- GitLab CI --------------------------------------------------------------------------------
_GITLAB_TOKEN = re.compile(
    r'\s*(?:(?P<str>"[^"]*"|\'[^\']*\')|(?P<var>\$\w+)|(?P<op>==|!=|&&|\|\||\(|\))|(?P<null>null))'
)


def gitlab_rule_matches(expression: str, variables: dict[str, str]) -> bool:
    """GitLab's `rules: if:` as the recipe uses it: $VARIABLES, quoted strings, == != && ||
    and parentheses; an unset variable is null."""
    text = expression.strip()
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _GITLAB_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    index = 0

    def take() -> tuple[str, str]:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def value() -> Any:
        kind, raw = take()
        if raw == "(":
            inner = either()
            take()
            return inner
        if kind == "str":
            return raw[1:-1]
        if kind == "var":
            return variables.get(raw[1:])
        if kind == "null":
            return None
        raise ExpressionError(f"unexpected {raw!r} in {text!r}")

    def compare() -> Any:
        left = value()
        if index < len(tokens) and tokens[index][1] in ("==", "!="):
            op = take()[1]
            right = value()
            return (left == right) if op == "==" else (left != right)
        return truthy(left)

    def both() -> bool:
        result = bool(compare())
        while index < len(tokens) and tokens[index][1] == "&&":
            take()
            result = bool(compare()) and result
        return result

    def either() -> bool:
        result = both()
        while index < len(tokens) and tokens[index][1] == "||":
            take()
            result = both() or result
        return result

    return either()


def run_gitlab_job(
    machine: Machine, pipeline: Path, job: str, variables: dict[str, str], sha: str
) -> JobResult:
    """Run one job of a .gitlab-ci.yml with the pipeline's predefined variables."""
    doc = yaml.safe_load(pipeline.read_text())
    spec = dict(doc[job])
    parent = spec.pop("extends", None)
    if parent is not None:
        spec = {**doc[parent], **spec}
    env = {**machine.env, **{k: str(v) for k, v in doc.get("variables", {}).items()}, **variables}
    env.update(machine.overrides)
    rules = spec.get("rules")
    if rules is not None and not any(gitlab_rule_matches(r["if"], env) for r in rules):
        return JobResult(ran=False)
    workspace = machine.root / "work" / job
    _checkout(machine, sha, workspace)
    env["CI_PROJECT_DIR"] = str(workspace)
    script = "\n".join([*spec.get("before_script", []), *spec["script"]])
    code, output = _shell(script, workspace, env, machine.read_only_for(spec.get("tags", [])))
    return JobResult(True, code, output, workspace)


def machine_env(extra_path: str | None = None) -> dict[str, str]:
    """What a runner host's environment holds: PATH, HOME, and the engine's location."""
    keep = ("PATH", "HOME", "LANG", "HOSTING_ENGINE_DIR", "DOCKER_HOST", "PIP_FIND_LINKS",
            "PIP_NO_INDEX", "PIP_DISABLE_PIP_VERSION_CHECK")  # fmt: skip
    env = {k: os.environ[k] for k in keep if k in os.environ}
    if extra_path:
        env["PATH"] = f"{extra_path}:{env.get('PATH', '')}"
    return env
