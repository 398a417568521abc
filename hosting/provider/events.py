"""Engine events → steps a person (or CI) can follow, and a summary of what changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Pulumi's step operations, in the words `plan` prints.
OP_WORDS = {
    "create": "create",
    "update": "update",
    "replace": "replace",
    "create-replacement": "replace",
    "delete-replaced": "replace",
    "replace-replacement": "replace",
    "delete": "delete",
    "same": "same",
    "read": "read",
    "refresh": "refresh",
    "import": "import",
    "discard": "delete",
}

KIND_WORDS = {
    "docker:index/container:Container": "container",
    "docker:index/network:Network": "network",
    "docker:index/volume:Volume": "volume",
    "docker:index/remoteImage:RemoteImage": "image",
    "docker:index/service:Service": "service",  # platform.target swarm
    "docker:index/secret:Secret": "secret",
    "pulumi:providers:docker": "provider",
}


RESOURCE_KINDS = frozenset({"container", "network", "volume", "image", "service", "secret"})

# Steps that change nothing: every resource reads itself back before a plan or an apply.
QUIET_OPS = frozenset({"same", "read", "refresh"})


@dataclass(frozen=True)
class Step:
    """One resource's change: `op` is create | update | replace | delete | same | …"""

    urn: str
    name: str
    kind: str
    op: str
    tenant: str | None
    deployment: str | None
    status: str = "planned"  # planned | started | done | failed
    elapsed_s: float = 0.0
    diffs: tuple[str, ...] = ()


def place_of(name: str) -> tuple[str | None, str | None]:
    """(tenant, deployment) from a logical name `tenant_deployment_suffix` or `tenant_net`."""
    if name.startswith(("edge", "image:")) or name == "docker":
        return None, None
    parts = name.split("_")
    if len(parts) == 2 and parts[1] == "net":
        return parts[0], None
    if len(parts) >= 2:
        return parts[0], parts[1]
    return parts[0], None


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def kind_of(type_token: str) -> str:
    return KIND_WORDS.get(type_token, type_token.rsplit(":", 1)[-1].lower())


@dataclass
class Collector:
    """Receives engine events; calls `on_step` for live display; keeps every step."""

    on_step: Callable[[Step], None] | None = None
    steps: dict[str, Step] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)
    _started: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        done = getattr(event, "res_outputs_event", None)
        failed = getattr(event, "res_op_failed_event", None)
        diag = getattr(event, "diagnostic_event", None)
        if pre is not None:
            self._record(pre.metadata, "planned" if pre.planning else "started")
        elif done is not None:
            self._record(done.metadata, "done")
        elif failed is not None:
            self._record(failed.metadata, "failed")
        elif diag is not None and diag.severity in ("error", "warning"):
            # Messages come from the engine and providers: they name resources, not secrets
            # (secret inputs are masked by the engine before they reach events).
            where = f"{name_of(diag.urn)}: " if getattr(diag, "urn", None) else ""
            self.diagnostics.append(f"{diag.severity}: {where}{diag.message.strip()}")

    def _record(self, meta: Any, status: str) -> None:
        op_value = getattr(meta.op, "value", meta.op)
        op = OP_WORDS.get(str(op_value), str(op_value))
        urn = meta.urn
        now = time.monotonic()
        if status == "started":
            self._started[urn] = now
        elapsed = now - self._started.get(urn, now)
        name = name_of(urn)
        tenant, deployment = place_of(name)
        step = Step(
            urn=urn,
            name=name,
            kind=kind_of(meta.type),
            op=op,
            tenant=tenant,
            deployment=deployment,
            status=status,
            elapsed_s=round(elapsed, 1),
            diffs=tuple(meta.diffs or ()),
        )
        # A replacement shows up as several steps on one URN; keep the strongest word.
        prev = self.steps.get(urn)
        if prev is not None and prev.op == "replace" and op != "replace":
            step = Step(**{**step.__dict__, "op": "replace"})
        self.steps[urn] = step
        if self.on_step is not None and step.kind != "provider" and op not in QUIET_OPS:
            self.on_step(step)

    def changes(self) -> list[Step]:
        """Steps that change something, components excluded (their children say it)."""
        return [
            s for s in self.steps.values() if s.op not in QUIET_OPS and s.kind in RESOURCE_KINDS
        ]

    def targets(self) -> list[Step]:
        """Steps that change something, components included: an `up --target` must name a
        new resource's parent too, or the engine cannot create it."""
        return [s for s in self.steps.values() if s.op not in QUIET_OPS]
