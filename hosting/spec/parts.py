"""What the rules that span the file (rules.py) look at: each part of hosting.yaml that is
valid on its own.

One broken part must not hide the problems of the others (issue 14): a tenant whose
`replicas: -1` fails is still checked against its plan, and its other deployments for their
references and domains. A valid file gives the same view of its Spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from hosting.spec import models
from hosting.spec.models import (
    LABEL_RE,
    Acme,
    ApiDeployment,
    DatabaseDeployment,
    Plan,
    Runtimes,
    Spec,
    WebDeployment,
    check_domain,
)

KINDS = ("web", "api", "database")
M = TypeVar("M", Plan, Acme, Runtimes)


@dataclass(frozen=True)
class Unparsed:
    """A deployment whose own fields are invalid (reported already). It still counts against
    its tenant's plan and may be referenced, by the type it names (None: not a known type)."""

    type: str | None


Deployment = WebDeployment | ApiDeployment | DatabaseDeployment | Unparsed


@dataclass(frozen=True)
class TenantPart:
    plan: str | None  # lowercase; None when the file gives no plan name
    has_limits: bool
    deployments: dict[str, Deployment]


@dataclass(frozen=True)
class Parts:
    # platform.domain and platform.acme, each None when absent or invalid itself
    domain: str | None
    acme: Acme | None
    runtimes: Runtimes | None  # platform.runtimes, or its defaults; None when invalid itself
    plans: dict[str, Plan]  # the plans that are valid
    plan_names: frozenset[str]  # every plan of the catalog and the file, valid or not
    tenants: dict[str, TenantPart]
    target: str | None = "docker"  # platform.target; None when invalid itself
    swarm_nodes: bool = False  # platform.swarm.nodes names at least one node


def of_spec(spec: Spec, plan_names: frozenset[str] = frozenset()) -> Parts:
    """`plan_names`: plans the file names but the Spec lacks (refused names, reported)."""
    return Parts(
        domain=spec.platform.domain,
        acme=spec.platform.acme,
        runtimes=spec.platform.runtimes,
        plans=dict(spec.plans),
        plan_names=frozenset(spec.plans) | plan_names,
        tenants={
            tid: TenantPart(t.plan, t.limits is not None, dict(t.deployments))
            for tid, t in spec.tenants.items()
        },
        target=spec.platform.target,
        swarm_nodes=bool(spec.platform.swarm.nodes),
    )


def of_data(data: Any, plan_names: frozenset[str] = frozenset()) -> Parts:
    """The valid parts of a file whose whole did not validate (plans already merged)."""
    data = data if isinstance(data, dict) else {}
    plans = {}
    for name, fields in _mapping(data.get("plans")).items():
        plan = _valid(Plan, fields)
        if plan is not None:
            plans[str(name)] = plan
    tenants = {}
    for tid, raw in _mapping(data.get("tenants")).items():
        if not _label(tid) or not isinstance(raw, dict):
            continue  # reported; a tenant without a usable id has nothing to check against
        plan = raw.get("plan")
        tenants[tid] = TenantPart(
            plan.lower() if isinstance(plan, str) else None,
            raw.get("limits") is not None,
            {
                did: _deployment(dep)
                for did, dep in _mapping(raw.get("deployments")).items()
                if _label(did)
            },
        )
    platform = _mapping(data.get("platform"))
    return Parts(
        domain=_domain(platform.get("domain")),
        acme=_valid(Acme, platform.get("acme")),
        runtimes=_valid(Runtimes, platform.get("runtimes") or {}),
        plans=plans,
        plan_names=frozenset(str(n) for n in _mapping(data.get("plans"))) | plan_names,
        tenants=tenants,
        target=_target(platform.get("target", "docker")),
        swarm_nodes=bool(_mapping(_mapping(platform.get("swarm")).get("nodes"))),
    )


def _target(value: Any) -> str | None:
    return value if value in ("docker", "swarm") else None


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _label(key: Any) -> bool:
    return isinstance(key, str) and LABEL_RE.match(key) is not None


def _valid(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _domain(value: Any) -> str | None:
    try:
        return check_domain(value) if isinstance(value, str) else None
    except ValueError:
        return None


@cache
def _deployment_adapter() -> TypeAdapter[Any]:
    # Built on the first broken file only: a valid one never needs it.
    return TypeAdapter(models.Deployment)


def _deployment(value: Any) -> Deployment:
    try:
        dep: WebDeployment | ApiDeployment | DatabaseDeployment
        dep = _deployment_adapter().validate_python(value)
        return dep
    except ValidationError:
        kind = value.get("type") if isinstance(value, dict) else None
        return Unparsed(kind if kind in KINDS else None)
