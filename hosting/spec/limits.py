"""Plan usage and the product document's `canDeploy`, as pure functions of the spec."""

from __future__ import annotations

from dataclasses import dataclass

from hosting.errors import NotFoundError, UsageError
from hosting.spec.models import Spec, Tenant

KINDS = ("web", "api", "database")
PLAN_FIELD = {"web": "websites", "api": "apis", "database": "databases"}
# The product document's own words: "Limit reached: 3/3 webs" reads better as "websites".
NOUN = {"web": "websites", "api": "APIs", "database": "databases"}


@dataclass(frozen=True)
class KindUsage:
    kind: str
    used: int
    allowed: int

    @property
    def full(self) -> bool:
        return self.used >= self.allowed


@dataclass(frozen=True)
class Decision:
    tenant: str
    kind: str
    can_deploy: bool
    reason: str | None
    used: int
    allowed: int


def usage(spec: Spec, tenant: Tenant) -> dict[str, KindUsage]:
    plan = spec.plan_of(tenant)
    counts = dict.fromkeys(KINDS, 0)
    for dep in tenant.deployments.values():
        counts[dep.type] += 1
    return {k: KindUsage(k, counts[k], getattr(plan, PLAN_FIELD[k])) for k in KINDS}


def tenant_or_error(spec: Spec, tenant_id: str) -> Tenant:
    tenant = spec.tenants.get(tenant_id)
    if tenant is None:
        known = ", ".join(spec.tenants) or "none"
        raise NotFoundError(f"unknown tenant `{tenant_id}`", f"tenants in the file: {known}")
    return tenant


def can_deploy(spec: Spec, tenant_id: str, kind: str) -> Decision:
    if kind not in KINDS:
        raise UsageError(f"unknown deployment type `{kind}`", "use web, api or database")
    tenant = tenant_or_error(spec, tenant_id)
    use = usage(spec, tenant)[kind]
    if use.full:
        reason = f"Limit reached: {use.used}/{use.allowed} {NOUN[kind]}"
        return Decision(tenant_id, kind, False, reason, use.used, use.allowed)
    return Decision(tenant_id, kind, True, None, use.used, use.allowed)
