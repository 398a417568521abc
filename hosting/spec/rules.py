"""Rules that span the document; each returns problems as (path, message) pairs.

They run on a structurally valid Spec, so they can trust types and focus on meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hosting.spec.models import (
    REF_RE,
    SECRET_LIKE_ENV,
    ApiDeployment,
    DatabaseDeployment,
    Spec,
    WebDeployment,
)
from hosting.spec.names import hostname

Problem = tuple[tuple[str | int, ...], str]

EXPORTS = {
    "database": ("host", "port", "user", "password", "name", "url"),
    "web": ("url",),
    "api": ("url",),
}
_COUNT_FIELD = {"database": "databases", "api": "apis", "web": "websites"}
_NOUN = {"database": "databases", "api": "APIs", "web": "websites"}


def check(spec: Spec, base_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    for rule in (_plans, _limits, _domains, _references, _secrets_inline, _paths, _names):
        problems.extend(rule(spec, base_dir))
    return problems


def _plans(spec: Spec, _: Path) -> Iterator[Problem]:
    known = ", ".join(sorted(spec.plans))
    for tid, tenant in spec.tenants.items():
        if tenant.plan not in spec.plans:
            yield ("tenants", tid, "plan"), f"unknown plan `{tenant.plan}` (plans: {known})"
            continue
        plan = spec.plans[tenant.plan]
        if plan.custom_limits and tenant.limits is None:
            yield (
                ("tenants", tid, "plan"),
                f"plan {plan.name} has custom limits: give the tenant "
                "`limits: {cpus, memory_mb, disk_io_mbps, network_mbps}`",
            )
        if not plan.custom_limits and tenant.limits is not None:
            yield (
                ("tenants", tid, "limits"),
                f"plan {plan.name} sets the limits; `limits` is only for plans with custom "
                "limits (remove it or change the plan)",
            )


def usage_counts(deployments: dict[str, object]) -> dict[str, int]:
    counts = {"database": 0, "api": 0, "web": 0}
    for dep in deployments.values():
        counts[dep.type] += 1  # type: ignore[attr-defined]
    return counts


def _limits(spec: Spec, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        plan = spec.plans.get(tenant.plan)
        if plan is None:
            continue
        counts = usage_counts(dict(tenant.deployments))
        for kind, count in counts.items():
            allowed = getattr(plan, _COUNT_FIELD[kind])
            if count > allowed:
                noun = _NOUN[kind] if count != 1 else _NOUN[kind].rstrip("s")
                yield (
                    ("tenants", tid, "deployments"),
                    f"tenant {tid}: {count} {noun}, plan {plan.name} allows {allowed} "
                    "(remove some or move the tenant to a bigger plan)",
                )
        if not plan.custom_domain:
            for did, dep in tenant.deployments.items():
                if isinstance(dep, WebDeployment | ApiDeployment) and dep.domains:
                    yield (
                        ("tenants", tid, "deployments", did, "domains"),
                        f"plan {plan.name} has no custom domains "
                        "(remove `domains` or move the tenant to a plan with custom_domain)",
                    )


def _domains(spec: Spec, _: Path) -> Iterator[Problem]:
    base = spec.platform.domain
    seen: dict[str, str] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, WebDeployment | ApiDeployment):
                continue
            for i, domain in enumerate(dep.domains):
                path = ("tenants", tid, "deployments", did, "domains", i)
                if domain == base or domain.endswith("." + base):
                    yield (
                        path,
                        f"`{domain}` is under platform.domain `{base}`, whose names are "
                        "generated; use a domain of the tenant's own",
                    )
                owner = f"{tid}/{did}"
                if domain in seen:
                    yield path, f"`{domain}` is already used by {seen[domain]}"
                else:
                    seen[domain] = owner


def _references(spec: Spec, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        graph: dict[str, set[str]] = {}
        for did, dep in tenant.deployments.items():
            graph[did] = set()
            if isinstance(dep, DatabaseDeployment):
                continue
            for var, value in dep.env.items():
                path = ("tenants", tid, "deployments", did, "env", var)
                for m in REF_RE.finditer(value):
                    target, fld = m.group(1), m.group(2)
                    other = tenant.deployments.get(target)
                    if other is None:
                        elsewhere = [
                            t for t, ten in spec.tenants.items() if target in ten.deployments
                        ]
                        why = (
                            f"; it belongs to tenant {elsewhere[0]}, and a tenant can only "
                            "reference its own deployments"
                            if elsewhere
                            else f" (deployments of {tid}: {', '.join(tenant.deployments)})"
                        )
                        yield path, f"`${{{target}.{fld}}}` names no deployment of {tid}{why}"
                        continue
                    if fld not in EXPORTS[other.type]:
                        yield (
                            path,
                            f"`${{{target}.{fld}}}`: a {other.type} exports "
                            f"{', '.join(EXPORTS[other.type])}",
                        )
                        continue
                    graph[did].add(target)
        for cycle in _cycles(graph):
            yield (
                ("tenants", tid, "deployments", cycle[0], "env"),
                "reference cycle: " + " → ".join([*cycle, cycle[0]]),
            )


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str) -> Iterator[list[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    yield cycle
            elif nxt not in state:
                yield from visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            yield from visit(node)


def _secrets_inline(spec: Spec, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment):
                continue
            for var, value in dep.env.items():
                if SECRET_LIKE_ENV.search(var.upper()) and value and not REF_RE.search(value):
                    yield (
                        ("tenants", tid, "deployments", did, "env", var),
                        f"`{var}` looks like a secret written in plain text; move it to "
                        f"`secrets: {{{var}: {{env: NAME}}}}` and export NAME when applying",
                    )
            for var in dep.secrets:
                if var in dep.env:
                    yield (
                        ("tenants", tid, "deployments", did, "secrets", var),
                        f"`{var}` is both in env and in secrets; keep it in secrets only",
                    )


def _paths(spec: Spec, base_dir: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            prefix = ("tenants", tid, "deployments", did)
            if isinstance(dep, WebDeployment | ApiDeployment):
                if dep.static is not None and not (base_dir / dep.static).is_dir():
                    yield (*prefix, "static"), f"folder `{dep.static}` does not exist"
                if dep.build is not None:
                    ctx = base_dir / dep.build.context
                    if not ctx.is_dir():
                        yield (
                            (*prefix, "build", "context"),
                            f"folder `{dep.build.context}` does not exist",
                        )
                    elif not (ctx / dep.build.dockerfile).is_file():
                        yield (
                            (*prefix, "build", "dockerfile"),
                            f"`{dep.build.dockerfile}` not found in `{dep.build.context}`",
                        )
    acme = spec.platform.acme
    if acme and acme.ca_root and not (base_dir / acme.ca_root).is_file():
        yield ("platform", "acme", "ca_root"), f"file `{acme.ca_root}` does not exist"


def _names(spec: Spec, _: Path) -> Iterator[Problem]:
    """Generated subdomains are 30 bits of a hash; refuse the (rare) collision loudly."""
    seen: dict[str, str] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            host = hostname(tid, did, dep.type, spec.platform.domain)
            if host in seen:
                yield (
                    ("tenants", tid, "deployments", did),
                    f"generated subdomain {host} collides with {seen[host]}; rename one",
                )
            seen[host] = f"{tid}/{did}"
