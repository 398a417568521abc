"""Load hosting.yaml: parse with positions, merge plans, validate, check rules.

Every problem found is reported at once, each with file, line, column and YAML path: the
rules check every part that is valid on its own, even when other parts are not.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hosting.errors import SpecError, SpecProblem
from hosting.spec import models, parts, rules
from hosting.spec.models import LABEL_RE, Spec
from hosting.spec.plans import DEFAULT_PLANS, merge_plan
from hosting.spec.yamlpos import Path_, Positions, format_path, parse

_DEPLOYMENT_MODELS: dict[str, type[BaseModel]] = {
    "web": models.WebDeployment,
    "api": models.ApiDeployment,
    "database": models.DatabaseDeployment,
}

# Which model stands at a YAML path ("*" matches any one key), to suggest known keys.
_MODEL_AT: list[tuple[tuple[str, ...], type[BaseModel] | None]] = [
    ((), Spec),
    (("platform",), models.Platform),
    (("platform", "acme"), models.Acme),
    (("platform", "docker"), models.Docker),
    (("platform", "images"), models.Images),
    (("platform", "dns"), models.Dns),
    (("platform", "swarm"), models.Swarm),
    (("platform", "billing"), models.Billing),
    (("platform", "smtp"), models.Smtp),
    (("platform", "smtp", "username"), models.SecretRef),
    (("platform", "smtp", "password"), models.SecretRef),
    (("platform", "payments"), models.Payments),
    (("platform", "payments", "api_key"), models.SecretRef),
    (("platform", "payments", "webhook_secret"), models.SecretRef),
    (("plans", "*"), models.Plan),
    (("plans", "*", "limits"), models.Limits),
    (("tenants", "*"), models.Tenant),
    (("tenants", "*", "limits"), models.Limits),
    (("tenants", "*", "deployments", "*"), None),  # by its `type`
    (("tenants", "*", "deployments", "*", "build"), models.Build),
    (("tenants", "*", "deployments", "*", "health"), models.Health),
    (("tenants", "*", "deployments", "*", "pooling"), models.Pooling),
    (("tenants", "*", "deployments", "*", "replicas"), models.Autoscale),
    (("tenants", "*", "deployments", "*", "secrets", "*"), models.SecretRef),
]

# Platform fields that hold a secret reference: a literal there is a secret in the file.
_SECRET_FIELDS = {
    ("platform", "smtp", "username"),
    ("platform", "smtp", "password"),
    ("platform", "payments", "api_key"),
    ("platform", "payments", "webhook_secret"),
}


def load(path: str | Path) -> Spec:
    """Read and validate hosting.yaml. Raises SpecError with every problem found."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise SpecError.single(
            file, 1, 1, "", "file not found; run `hosting init` or pass -f FILE"
        ) from None
    except IsADirectoryError:
        raise SpecError.single(file, 1, 1, "", "is a directory, not a file") from None
    except OSError as exc:
        raise SpecError.single(file, 1, 1, "", f"cannot read: {exc.strerror}") from None
    return loads(raw, str(file), file.resolve().parent)


def loads(raw: bytes | str, filename: str = "hosting.yaml", base_dir: Path | None = None) -> Spec:
    data_bytes = raw.encode() if isinstance(raw, str) else raw
    data, positions, problems = parse(data_bytes, filename)
    if problems:
        raise SpecError(problems)
    problems = []

    def problem(path: Path_, message: str, at_key: bool = False) -> None:
        line, col = positions.of_key(path) if at_key else positions.of_value(path)
        problems.append(SpecProblem(filename, line, col, format_path(path), message))

    # Plans the file names, even those refused below: a tenant on one is not on an unknown plan.
    given = data.get("plans")
    named = frozenset(str(k).lower() for k in given) if isinstance(given, dict) else frozenset()
    data = _merge_plans(data, problem)
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(data)
        valid = parts.of_spec(spec, named)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path, message, at_key = _explain(err, data)
            if err["type"] == "missing":
                # Point at the mapping that lacks the field, where the user will add it.
                line, col = positions.of_key(path[:-1])
                problems.append(SpecProblem(filename, line, col, format_path(path), message))
                continue
            problem(path, message, at_key)
        valid = parts.of_data(data, named)
    for path, message in rules.check(valid, base_dir or Path.cwd()):
        problem(path, message, True)
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def _merge_plans(data: dict[str, Any], problem: Any) -> dict[str, Any]:
    """Default plans, with the file's overrides and additions; names compared lowercase."""
    given = data.get("plans", {})
    if given is None:
        given = {}
    merged: dict[str, Any] = {name: plan.model_dump() for name, plan in DEFAULT_PLANS.items()}
    if not isinstance(given, dict):
        problem(("plans",), "must be a mapping of plan names to plans")
        return {**data, "plans": merged}  # tenants on the default plans are still checked
    seen: dict[str, str] = {}
    for key, fields in given.items():
        name = str(key).lower()
        if name in seen:
            problem(
                ("plans", key),
                f"plan `{key}` is the same as `{seen[name]}` (names ignore case)",
                True,
            )
            continue
        seen[name] = str(key)
        if not LABEL_RE.match(name):
            problem(("plans", key), f"`{key}` is not a valid plan name (a DNS label)", True)
            continue
        if not isinstance(fields, dict):
            problem(("plans", key), "a plan must be a mapping of fields")
            continue
        merged[name] = merge_plan(name, fields)
    return {**data, "plans": merged}


def _explain(err: Any, data: Any) -> tuple[Path_, str, bool]:
    """Turn a pydantic error into (YAML path, message, point-at-key)."""
    path, leftover = _data_path(err["loc"], data)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _allowed_keys(path[:-1], data)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = (
            f"; did you mean `{close[0]}`?"
            if close
            else (f" (known keys: {', '.join(allowed)})" if allowed else "")
        )
        return path, f"unknown key `{key}`{hint}", True
    if kind == "missing":
        name = str(path[-1])
        extra = ""
        if len(path) == 3 and path[0] == "plans" and path[1] not in DEFAULT_PLANS:
            extra = " (a new plan must give every field)"
        return path, f"missing required field `{name}`{extra}", False
    if "[key]" in leftover and kind == "value_error":  # a key with a rule of its own
        return path, str(ctx.get("error", err["msg"])), True
    if "[key]" in leftover:
        key = str(path[-1])
        return path, f"`{key}` is not a valid name: {_LABEL_HELP}", True
    if kind == "union_tag_invalid":
        return (
            (*path, "type"),
            (f"unknown type `{ctx.get('tag')}`: use web, api or database"),
            False,
        )
    if kind == "union_tag_not_found":
        return path, "missing `type`: web, api or database", False
    if kind == "literal_error":
        if path == ("version",):
            return path, f"unsupported version `{given}`: this tool reads version 1", False
        return path, f"`{_short(given)}` must be {ctx.get('expected')}", False
    if kind == "string_pattern_mismatch":
        return path, f"`{_short(given)}` is not valid: {_LABEL_HELP}", False
    if kind == "value_error":
        return path, str(ctx.get("error", err["msg"])), False
    if kind in ("model_type", "dict_type", "model_attributes_type") and (
        "secrets" in path[:-1] or path in _SECRET_FIELDS
    ):
        return (
            path,
            (
                "secrets are never written in the file: use `{env: NAME}` (read from the "
                "environment at apply) or `{file: path}`"
            ),
            False,
        )
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return path, f"must be a mapping, not `{_short(given)}`", False
    if kind == "list_type":
        return path, f"must be a list, not `{_short(given)}`", False
    message = err["msg"][0].lower() + err["msg"][1:]
    return path, f"{message} (got `{_short(given)}`)", False


_LABEL_HELP = "lowercase letters, digits and '-', starting with a letter, at most 40 characters"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Path_, list[str]]:
    """Pydantic locations include union tags ('web') and '[key]'; keep only real keys."""
    path: list[str | int] = []
    leftover: list[str] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            path.append(part)
            node = node[part]
        elif (
            isinstance(node, dict)
            and not leftover
            and part not in ("[key]",)
            and (
                isinstance(part, str)
                and part not in ("web", "api", "database", "function-after", "count", "autoscale")
            )
        ):
            path.append(part)  # a missing or unknown key: report it by name
            node = None
        else:
            leftover.append(str(part))
    return tuple(path), leftover


def _allowed_keys(parent: Path_, data: Any) -> list[str]:
    for pattern, model in _MODEL_AT:
        if len(pattern) != len(parent):
            continue
        if all(p == "*" or p == str(q) for p, q in zip(pattern, parent, strict=True)):
            if model is None:
                node: Any = data
                for part in parent:
                    node = node.get(part) if isinstance(node, dict) else None
                kind = node.get("type") if isinstance(node, dict) else None
                model = _DEPLOYMENT_MODELS.get(str(kind))
                if model is None:
                    return []
            return sorted(f.alias or name for name, f in model.model_fields.items())
    return []


__all__ = ["Positions", "load", "loads"]
