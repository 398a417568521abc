"""Which custom domains the spec names, and the DNS records each needs (pure).

A listed `www.<apex>` whose apex is listed for the same deployment is a redirect: it needs a
CNAME to the apex, and the edge answers it with a permanent redirect. Every other custom domain
needs an A record to the platform's public IPv4 (and AAAA where the platform has IPv6), or a
CNAME to the deployment's generated subdomain, which the platform owns and keeps pointed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosting.errors import NotFoundError
from hosting.spec import names
from hosting.spec.models import DatabaseDeployment, Spec


@dataclass(frozen=True)
class Record:
    """One DNS record the domain's owner creates at their DNS provider."""

    type: str  # A | AAAA | CNAME
    name: str
    value: str

    def render(self) -> str:
        return f"{self.type:<5} {self.name} → {self.value}"


@dataclass(frozen=True)
class CustomDomain:
    domain: str
    tenant: str
    deployment: str
    kind: str  # web | api
    hostname: str  # the deployment's generated subdomain
    apex: str | None  # set for www.<apex> when <apex> is listed too: a redirect

    @property
    def owner(self) -> str:
        return f"{self.tenant}/{self.deployment}"

    @property
    def is_redirect(self) -> bool:
        return self.apex is not None


def custom_domains(spec: Spec, tenant: str | None = None) -> list[CustomDomain]:
    """Every custom domain in spec order; only `tenant`'s when given (unknown → NotFoundError)."""
    if tenant is not None and tenant not in spec.tenants:
        known = ", ".join(spec.tenants) or "none"
        raise NotFoundError(f"unknown tenant `{tenant}`", f"tenants in the file: {known}")
    out: list[CustomDomain] = []
    for tid, t in spec.tenants.items():
        if tenant is not None and tid != tenant:
            continue
        for did, dep in t.deployments.items():
            if isinstance(dep, DatabaseDeployment):
                continue
            listed = set(dep.domains)
            host = names.hostname(tid, did, dep.type, spec.platform.domain)
            for d in dep.domains:
                apex = d[4:] if d.startswith("www.") and d[4:] in listed else None
                out.append(CustomDomain(d, tid, did, dep.type, host, apex))
    return out


def find(spec: Spec, domain: str) -> CustomDomain:
    wanted = domain.lower().rstrip(".")
    for cd in custom_domains(spec):
        if cd.domain == wanted:
            return cd
    raise NotFoundError(
        f"`{domain}` is not a custom domain in the file",
        "list it under a deployment's `domains:`; `hosting domains` shows the known ones",
    )


@dataclass(frozen=True)
class RequiredRecords:
    """`records` all together, or else `alternative` (a CNAME) instead."""

    records: tuple[Record, ...]
    alternative: tuple[Record, ...]


def required_records(spec: Spec, cd: CustomDomain) -> RequiredRecords:
    if cd.apex is not None:
        return RequiredRecords((Record("CNAME", cd.domain, cd.apex),), ())
    address = [Record("A", cd.domain, str(spec.platform.public_ipv4))]
    if spec.platform.public_ipv6 is not None:
        address.append(Record("AAAA", cd.domain, str(spec.platform.public_ipv6)))
    # A CNAME cannot sit at a zone's apex (example.com); A/AAAA work everywhere.
    return RequiredRecords(tuple(address), (Record("CNAME", cd.domain, cd.hostname),))
