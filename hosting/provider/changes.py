"""What `plan` reports: changes grouped by tenant and deployment, plan usage after the change
("acme websites 2→3 of 3") and the cost impact. Pure: steps and outputs in, report out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hosting.provider.events import Step
from hosting.spec import limits
from hosting.spec.models import Spec


@dataclass(frozen=True)
class UsageLine:
    kind: str  # web | api | database
    noun: str  # websites | APIs | databases
    before: int
    after: int
    allowed: int

    def text(self, tenant: str) -> str:
        return f"{tenant} {self.noun} {self.before}→{self.after} of {self.allowed}"


@dataclass(frozen=True)
class Cost:
    plan_before: str | None
    plan_after: str | None
    monthly_before: Decimal
    monthly_after: Decimal
    billing_cycle: str | None

    @property
    def delta(self) -> Decimal:
        return self.monthly_after - self.monthly_before

    def text(self) -> str:
        if self.plan_after is None:
            return f"-${self.monthly_before:.2f}/mo (tenant removed from {self.plan_before})"
        if self.plan_before is None:
            return f"+${self.monthly_after:.2f}/mo (new tenant on {self.plan_after})"
        if self.plan_before != self.plan_after:
            sign = "+" if self.delta >= 0 else "-"
            return (
                f"${self.monthly_before:.2f} → ${self.monthly_after:.2f}/mo "
                f"({sign}${abs(self.delta):.2f}, {self.plan_before} → {self.plan_after})"
            )
        return f"${self.monthly_after:.2f}/mo on {self.plan_after}, unchanged"


@dataclass
class TenantReport:
    tenant: str
    deployments: dict[str, list[Step]] = field(default_factory=dict)  # "" = tenant-wide
    usage: list[UsageLine] = field(default_factory=list)
    cost: Cost | None = None
    # The billing engine's view: the base charges the change adds, pro-rated as invoices will.
    proration: Any = None

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(s.op for steps in self.deployments.values() for s in steps))


@dataclass
class PlanReport:
    tenants: list[TenantReport]
    platform: list[Step]  # the edge and other shared resources

    @property
    def changed(self) -> bool:
        return bool(self.platform) or any(t.deployments for t in self.tenants)

    @property
    def counts(self) -> dict[str, int]:
        total: Counter[str] = Counter(s.op for s in self.platform)
        for t in self.tenants:
            total.update(t.counts)
        return dict(total)


def _monthly(spec: Spec, plan: str | None) -> Decimal:
    if plan is None or plan not in spec.plans:
        return Decimal("0")
    return spec.plans[plan].price_monthly


def report(
    spec: Spec, steps: list[Step], previous: dict[str, Any], tenant_filter: str | None = None
) -> PlanReport:
    before_kinds: dict[str, Counter[str]] = {}
    before_plan: dict[str, str] = {}
    for key, value in previous.items():
        if not isinstance(value, dict):
            continue
        if "/" in key:
            tid = key.split("/", 1)[0]
            before_kinds.setdefault(tid, Counter())[str(value.get("type"))] += 1
        elif "plan" in value:
            before_plan[key] = str(value["plan"])
    tenant_ids = list(spec.tenants) + [t for t in before_plan if t not in spec.tenants]
    reports: list[TenantReport] = []
    for tid in tenant_ids:
        if tenant_filter is not None and tid != tenant_filter:
            continue
        rep = TenantReport(tid)
        for s in steps:
            if s.tenant == tid:
                rep.deployments.setdefault(s.deployment or "", []).append(s)
        tenant = spec.tenants.get(tid)
        before = before_kinds.get(tid, Counter())
        if tenant is not None:
            use = limits.usage(spec, tenant)
            for kind, u in use.items():
                rep.usage.append(
                    UsageLine(kind, limits.NOUN[kind], before[kind], u.used, u.allowed)
                )
        old_plan = before_plan.get(tid)
        new_plan = tenant.plan if tenant else None
        rep.cost = Cost(
            old_plan,
            new_plan,
            _monthly(spec, old_plan),
            _monthly(spec, new_plan),
            tenant.billing_cycle if tenant else None,
        )
        reports.append(rep)
    platform = [s for s in steps if s.tenant is None] if tenant_filter is None else []
    return PlanReport(reports, platform)
