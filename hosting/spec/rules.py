"""Rules that span the document; each returns problems as (path, message) pairs.

They run on the parts of the file that are valid on their own (parts.py), so they can trust
types and focus on meaning, and a broken part elsewhere hides none of their problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hosting.spec.models import (
    REF_RE,
    SECRET_LIKE_ENV,
    ApiDeployment,
    DatabaseDeployment,
    WebDeployment,
)
from hosting.spec.names import subdomain_label
from hosting.spec.parts import Parts

Problem = tuple[tuple[str | int, ...], str]

EXPORTS = {
    "database": ("host", "port", "user", "password", "name", "url", "direct_url", "read_url"),
    "web": ("url",),
    "api": ("url",),
}
_COUNT_FIELD = {"database": "databases", "api": "apis", "web": "websites"}
_NOUN = {"database": "databases", "api": "APIs", "web": "websites"}
# Plans whose databases get no pooler: the free plan's one small database has no need of one,
# and each pooler is one more container on the host (issue 12 leaves the choice open).
NO_POOLING_PLANS = frozenset({"free"})


def check(spec: Parts, base_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    rules = (
        _plans,
        _limits,
        _domains,
        _references,
        _secrets_inline,
        _paths,
        _runtimes,
        _names,
        _target,
    )
    for rule in rules:
        problems.extend(rule(spec, base_dir))
    return problems


def _plans(spec: Parts, _: Path) -> Iterator[Problem]:
    known = ", ".join(sorted(spec.plan_names))
    for tid, tenant in spec.tenants.items():
        if tenant.plan is None:
            continue
        if tenant.plan not in spec.plan_names:
            yield ("tenants", tid, "plan"), f"unknown plan `{tenant.plan}` (plans: {known})"
            continue
        plan = spec.plans.get(tenant.plan)
        if plan is None:  # named, but invalid itself (reported)
            continue
        if plan.custom_limits and not tenant.has_limits:
            yield (
                ("tenants", tid, "plan"),
                f"plan {plan.name} has custom limits: give the tenant "
                "`limits: {cpus, memory_mb, disk_io_mbps, network_mbps}`",
            )
        if not plan.custom_limits and tenant.has_limits:
            yield (
                ("tenants", tid, "limits"),
                f"plan {plan.name} sets the limits; `limits` is only for plans with custom "
                "limits (remove it or change the plan)",
            )


def _limits(spec: Parts, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        plan = spec.plans.get(tenant.plan or "")
        if plan is None:
            continue
        by_kind: dict[str, list[str]] = {kind: [] for kind in _COUNT_FIELD}
        for did, dep in tenant.deployments.items():
            if dep.type is not None:  # a deployment broken elsewhere still takes its place
                by_kind[dep.type].append(did)
        for kind, ids in by_kind.items():
            allowed = getattr(plan, _COUNT_FIELD[kind])
            if len(ids) > allowed:
                # At the first one that does not fit, in the file's order: where to look.
                over = ids[allowed:]
                yield (
                    ("tenants", tid, "deployments", over[0]),
                    f"tenant {tid}: {_count(len(ids), kind)}, plan {plan.name} allows "
                    f"{allowed}, so {_listed(over)} {'does' if len(over) == 1 else 'do'} not fit "
                    f"(remove {'one' if len(over) == 1 else len(over)} or move the tenant to a "
                    "bigger plan)",
                )
        if plan.name in NO_POOLING_PLANS:
            for did, dep in tenant.deployments.items():
                if isinstance(dep, DatabaseDeployment) and dep.pooling is not None:
                    yield (
                        ("tenants", tid, "deployments", did, "pooling"),
                        f"plan {plan.name} has no connection pooling (remove `pooling` or "
                        "move the tenant to a paid plan)",
                    )
        for did, dep in tenant.deployments.items():
            if isinstance(dep, DatabaseDeployment) and dep.replicas > plan.database_replicas:
                allows = (
                    f"allows {plan.database_replicas}"
                    if plan.database_replicas
                    else "has no read replicas (Pro and above)"
                )
                yield (
                    ("tenants", tid, "deployments", did, "replicas"),
                    f"{dep.replicas} read replica{'s' if dep.replicas > 1 else ''}, but plan "
                    f"{plan.name} {allows} (lower "
                    "`replicas` or move the tenant to a bigger plan)",
                )
        if not plan.custom_domain:
            for did, dep in tenant.deployments.items():
                if isinstance(dep, WebDeployment | ApiDeployment) and dep.domains:
                    yield (
                        ("tenants", tid, "deployments", did, "domains"),
                        f"plan {plan.name} has no custom domains "
                        "(remove `domains` or move the tenant to a plan with custom_domain)",
                    )


def _count(n: int, kind: str) -> str:
    return f"{n} {_NOUN[kind] if n != 1 else _NOUN[kind].removesuffix('s')}"


def _listed(ids: list[str]) -> str:
    named = [f"`{i}`" for i in ids[:3]]
    if len(ids) > 3:
        return f"{', '.join(named)} and {len(ids) - 3} more"
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def _domains(spec: Parts, _: Path) -> Iterator[Problem]:
    base = spec.domain
    seen: dict[str, str] = {}
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, WebDeployment | ApiDeployment):
                continue
            for i, domain in enumerate(dep.domains):
                path = ("tenants", tid, "deployments", did, "domains", i)
                if base and (domain == base or domain.endswith("." + base)):
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


def _references(spec: Parts, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        graph: dict[str, set[str]] = {}
        for did, dep in tenant.deployments.items():
            graph[did] = set()
            if not isinstance(dep, WebDeployment | ApiDeployment):
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
                    if other.type is None:  # broken itself (reported): its exports unknown
                        continue
                    if fld not in EXPORTS[other.type]:
                        yield (
                            path,
                            f"`${{{target}.{fld}}}`: a {other.type} exports "
                            f"{', '.join(EXPORTS[other.type])}",
                        )
                        continue
                    no_replicas = isinstance(other, DatabaseDeployment) and not other.replicas
                    if fld == "read_url" and no_replicas:
                        yield (
                            path,
                            f"`${{{target}.{fld}}}`: {target} has no read replicas (give it "
                            "`replicas: N`, or read through `url`)",
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


def _secrets_inline(spec: Parts, _: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, WebDeployment | ApiDeployment):
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


def _paths(spec: Parts, base_dir: Path) -> Iterator[Problem]:
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            prefix = ("tenants", tid, "deployments", did)
            if isinstance(dep, WebDeployment | ApiDeployment):
                if dep.static is not None and not (base_dir / dep.static).is_dir():
                    yield (*prefix, "static"), f"folder `{dep.static}` does not exist"
                if dep.source is not None and not (base_dir / dep.source).is_dir():
                    yield (*prefix, "source"), f"folder `{dep.source}` does not exist"
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
    acme = spec.acme
    if acme and acme.ca_root and not (base_dir / acme.ca_root).is_file():
        yield ("platform", "acme", "ca_root"), f"file `{acme.ca_root}` does not exist"


def _runtimes(spec: Parts, _: Path) -> Iterator[Problem]:
    """A `runtime` version must be one the platform has a base image for."""
    if spec.runtimes is None:  # broken itself (reported)
        return
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if not isinstance(dep, WebDeployment | ApiDeployment) or dep.runtime is None:
                continue
            language, version = dep.runtime.language, dep.runtime.version
            known: dict[str, str] = getattr(spec.runtimes, language)
            if version not in known:
                yield (
                    ("tenants", tid, "deployments", did, "runtime", language),
                    f"no {language} runtime `{version}` (platform.runtimes.{language} has "
                    f"{', '.join(known)}; add one there to use it)",
                )


def _names(spec: Parts, _: Path) -> Iterator[Problem]:
    """Generated subdomains are 30 bits of a hash; refuse the (rare) collision loudly."""
    seen: dict[str, str] = {}
    suffix = f".{spec.domain}" if spec.domain else ""
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            if dep.type is None:
                continue
            host = subdomain_label(tid, did, dep.type) + suffix
            if host in seen:
                yield (
                    ("tenants", tid, "deployments", did),
                    f"generated subdomain {host} collides with {seen[host]}; rename one",
                )
            seen[host] = f"{tid}/{did}"


# What a swarm target cannot run yet, and why (the fix is in the message).
_NOT_ON_SWARM = {
    "pooling": "connection pooling runs on platform.target docker only so far",
}


def _target(spec: Parts, _: Path) -> Iterator[Problem]:
    """Autoscaling needs the swarm target; a swarm cannot (yet) run everything docker can."""
    if spec.target is None:
        return  # reported by the model
    if spec.swarm_nodes and spec.target != "swarm":
        yield (
            ("platform", "swarm", "nodes"),
            "the nodes of a swarm are metered on platform.target swarm only "
            "(set the target, or remove `nodes`)",
        )
    for tid, tenant in spec.tenants.items():
        for did, dep in tenant.deployments.items():
            at = ("tenants", tid, "deployments", did)
            if isinstance(dep, WebDeployment | ApiDeployment):
                if dep.autoscale is not None and spec.target != "swarm":
                    yield (
                        (*at, "replicas"),
                        "autoscaling (`replicas: {min, max}`) needs `platform.target: swarm` "
                        "(give a number of replicas, or set the target)",
                    )
            elif isinstance(dep, DatabaseDeployment) and spec.target == "swarm":
                if dep.pooling is not None:
                    yield (
                        (*at, "pooling"),
                        f"not on platform.target swarm: {_NOT_ON_SWARM['pooling']}",
                    )
                if dep.replicas:
                    yield (
                        (*at, "replicas"),
                        "not on platform.target swarm: read replicas run on platform.target "
                        "docker only so far (remove `replicas`)",
                    )
