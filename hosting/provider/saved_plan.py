"""Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`): the reviewed plan is the
applied plan.

A plan file is one JSON document: our header, the report people reviewed (`plan --format
json`), and the engine's own update plan, which constrains `up` to exactly those steps. The
header fingerprints everything the plan was made from — the spec file's bytes, the stack's
last update (apply, refresh or destroy; a plan saves none), the tool and engine versions,
and each secret — so `apply FILE` can refuse a stale plan before it changes anything.
Secrets are fingerprinted by HMAC under the stack's passphrase: the file never holds a
value, nor a plain hash one could test guesses against.
The engine plan holds secret inputs only as the stack's ciphertext.

Pure: fingerprints in, reasons out; reading and writing the file is all the I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hosting.errors import StalePlanError, UsageError

KIND = "hosting-plan"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Fingerprint:
    """What a plan was made from, compared field by field at apply."""

    spec_file: str  # as the user named it: for messages only
    spec_sha256: str
    stack_update: str  # the stack's last update ("" before the first): any update since stales
    tool_version: str
    engine: str  # "pulumi 3.x, docker plugin 5.x"
    secrets: dict[str, str] = field(default_factory=dict)  # name → HMAC, never the value
    tenant: str | None = None  # `plan --tenant T` applies only T (and the edge)


def secret_digest(passphrase: str, name: str, value: str) -> str:
    """HMAC-SHA256 keyed by the passphrase: equal values give equal digests, and without the
    passphrase the digest tells nothing about the value."""
    message = f"{name}\0{value}".encode()
    return hmac.new(passphrase.encode(), message, hashlib.sha256).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_reasons(saved: Fingerprint, now: Fingerprint) -> list[str]:
    """Why the saved plan no longer describes what apply would do; empty when it does."""
    reasons = []
    if saved.spec_sha256 != now.spec_sha256:
        reasons.append(f"{now.spec_file} changed since it was made")
    if saved.stack_update != now.stack_update:
        reasons.append(
            "the stack was updated since it was made (last update then: "
            f"{saved.stack_update or 'none'}; now: {now.stack_update or 'none'})"
        )
    changed = sorted(
        name
        for name in saved.secrets.keys() | now.secrets.keys()
        if saved.secrets.get(name) != now.secrets.get(name)
    )
    if changed:
        reasons.append("secrets changed since it was made: " + ", ".join(changed))
    if saved.tool_version != now.tool_version or saved.engine != now.engine:
        reasons.append(
            f"it was made by hosting {saved.tool_version} ({saved.engine}); this is hosting "
            f"{now.tool_version} ({now.engine})"
        )
    return reasons


def refuse_if_stale(path: Path, saved: Fingerprint, now: Fingerprint) -> None:
    reasons = stale_reasons(saved, now)
    if reasons:
        raise StalePlanError(
            f"the plan {path} is stale: " + "; ".join(reasons) + "; nothing was applied",
            "run `hosting plan --out FILE` again, review it, and apply the new file",
        )


@dataclass
class SavedPlan:
    fingerprint: Fingerprint
    report: dict[str, Any]  # `plan --format json`
    engine_plan: dict[str, Any]  # Pulumi's update plan, secrets encrypted by the stack
    targets: list[str] = field(default_factory=list)  # URNs of `plan --tenant T`; [] = all

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "fingerprint": asdict(self.fingerprint),
            "targets": self.targets,
            "report": self.report,
            "engine_plan": self.engine_plan,
        }


def write(path: Path, plan: SavedPlan) -> None:
    """Write atomically and readable by the owner only (it holds encrypted secrets)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(plan.to_json(), out, indent=1, default=str)
        out.write("\n")
    os.replace(tmp, path)


def read(path: Path) -> SavedPlan:
    def bad(why: str) -> UsageError:
        return UsageError(
            f"{path} is not a plan file: {why}", "make one with `hosting plan --out FILE`"
        )

    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(
            f"no plan file {path}", "make one with `hosting plan --out FILE`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(str(exc).splitlines()[0]) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise bad(f'no "kind": "{KIND}"')
    if doc.get("format_version") != FORMAT_VERSION:
        raise bad(
            f"format_version {doc.get('format_version')!r}; this hosting reads {FORMAT_VERSION}"
        )
    try:
        fingerprint = Fingerprint(**doc["fingerprint"])
        report, engine_plan, targets = doc["report"], doc["engine_plan"], doc["targets"]
    except (KeyError, TypeError) as exc:
        raise bad(f"incomplete ({exc})") from None
    if not isinstance(report, dict) or not isinstance(engine_plan, dict):
        raise bad("report and engine_plan must be objects")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise bad("targets must be a list of resource URNs")
    return SavedPlan(fingerprint, report, engine_plan, targets)
