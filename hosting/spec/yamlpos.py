"""YAML → plain data plus a map from YAML path to source position.

PyYAML's loaders silently keep the last of duplicate keys and expand aliases without bound,
so we compose the node graph ourselves, reject duplicates, bound the work, and remember
where every key and value stands so that later errors can name line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # libyaml is several times faster for the 1,000-tenant files operators keep
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - pure-Python fallback
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from hosting.errors import SpecProblem

Path_ = tuple[str | int, ...]

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64

_constructor = yaml.constructor.SafeConstructor()


@dataclass
class Positions:
    """Line/column (1-based) of every value and of every mapping key, by YAML path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path_) -> tuple[int, int]:
        # Walk up until something is known: a missing field is reported at its parent.
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def of_key(self, path: Path_) -> tuple[int, int]:
        return self.keys.get(path) or self.of_value(path)


class _Abort(Exception):
    def __init__(self, problem: SpecProblem) -> None:
        self.problem = problem


def _abort(filename: str, mark: yaml.Mark, path: str, message: str) -> _Abort:
    return _Abort(SpecProblem(filename, mark.line + 1, mark.column + 1, path, message))


def short_path(path: Path_) -> str:
    """For hostile files: a path thousands of levels deep helps nobody."""
    if len(path) <= 8:
        return format_path(path)
    return format_path(path[:4]) + "…" + format_path(path[-2:])


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse(raw: bytes, filename: str) -> tuple[Any, Positions, list[SpecProblem]]:
    """Parse bytes of a YAML file. Returns data, positions and problems (empty when fine)."""

    def fail(line: int, col: int, msg: str) -> tuple[Any, Positions, list[SpecProblem]]:
        return None, Positions(), [SpecProblem(filename, line, col, "", msg)]

    if len(raw) > MAX_BYTES:
        return fail(1, 1, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it up")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return fail(line, col, "file is not valid UTF-8; save it as UTF-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        return fail(1, 1, "file is empty; run `hosting init` for a commented starter file")
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "maximum nesting depth" in (exc.problem or ""):
            # libyaml ≥ 0.2.6 (PyYAML 6.0.4's wheels) stops at 1,000 levels before we can
            # count them: the same refusal, where it stopped.
            return fail(line, col, f"nesting is too deep (more than {MAX_DEPTH} levels)")
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            problem += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        hint = ""
        if "\\t" in problem or "\t" in problem or "tab" in problem.lower():
            hint = "; YAML does not allow tabs for indentation: use spaces"
        return fail(line, col, f"invalid YAML: {problem}{hint}")
    except yaml.YAMLError as exc:
        return fail(1, 1, f"invalid YAML: {exc}")
    except RecursionError:
        return fail(1, 1, f"nesting is too deep (more than {MAX_DEPTH} levels)")
    if root is None:
        return fail(1, 1, "file is empty; run `hosting init` for a commented starter file")

    positions = Positions()
    budget = [MAX_NODES]
    try:
        data = _build(root, (), positions, filename, budget, 0)
    except _Abort as abort:
        return None, Positions(), [abort.problem]
    if not isinstance(data, dict):
        line, col = root.start_mark.line + 1, root.start_mark.column + 1
        return fail(line, col, "the file must be a mapping (`version: 1`, `platform:`, …)")
    return data, positions, []


def _build(
    node: yaml.Node,
    path: Path_,
    positions: Positions,
    filename: str,
    budget: list[int],
    depth: int,
) -> Any:
    budget[0] -= 1
    mark = node.start_mark
    if budget[0] < 0:
        raise _abort(
            filename,
            mark,
            short_path(path),
            "too many nodes (anchors and aliases expand beyond "
            f"{MAX_NODES:,} values); remove the alias chain",
        )
    if depth > MAX_DEPTH:
        raise _abort(
            filename, mark, short_path(path), f"nesting is too deep (more than {MAX_DEPTH} levels)"
        )
    positions.values[path] = (mark.line + 1, mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _abort(
                    filename,
                    key_node.start_mark,
                    format_path(path),
                    "merge keys (`<<`) are not supported; write the keys out",
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise _abort(
                    filename,
                    key_node.start_mark,
                    format_path(path),
                    "a key must be a plain name, not a list or mapping",
                )
            key = _scalar(key_node, path, filename)
            if not isinstance(key, str | int | bool) or isinstance(key, bool):
                key = str(key_node.value)
            key = str(key) if isinstance(key, int) else key
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in out:
                first = positions.keys.get((*path, key), (0, 0))
                raise _abort(
                    filename,
                    key_node.start_mark,
                    format_path((*path, key)),
                    f"duplicate key `{key}` (first defined on line {first[0]}); "
                    "YAML would silently keep only the last one: merge them",
                )
            positions.keys[(*path, key)] = (kline, kcol)
            out[key] = _build(value_node, (*path, key), positions, filename, budget, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), positions, filename, budget, depth + 1)
            for i, item in enumerate(node.value)
        ]
    return _scalar(node, path, filename)


def _scalar(node: yaml.Node, path: Path_, filename: str) -> Any:
    ctor = _constructor.yaml_constructors.get(node.tag)
    if ctor is None:
        raise _abort(
            filename, node.start_mark, format_path(path), f"unsupported YAML tag `{node.tag}`"
        )
    try:
        return ctor(_constructor, node)
    except (ValueError, yaml.constructor.ConstructorError) as exc:
        what = "date" if node.tag.endswith(":timestamp") else node.tag.rsplit(":", 1)[-1]
        raise _abort(
            filename,
            node.start_mark,
            format_path(path),
            f"`{node.value}` is not a valid {what} ({exc}); dates are YYYY-MM-DD",
        ) from None
