"""Checks a custom domain's DNS records with dnspython, following CNAMEs.

Answers come from `platform.dns.nameservers` ("IP" or "IP:PORT") or, when that is empty, the
system's resolvers. Every outcome is a `CheckResult` with a sentence a user can act on;
a timeout or a server failure is `transient`: it says nothing about the records themselves.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from hosting.domains.records import CustomDomain
from hosting.errors import UsageError
from hosting.spec.models import Spec

DEFAULT_TIMEOUT = 5.0
MAX_CNAME_HOPS = 8


@dataclass(frozen=True)
class CheckResult:
    domain: str
    ok: bool
    reason: str
    transient: bool = False  # timeout or SERVFAIL: try again later, the records may be fine
    chain: tuple[str, ...] = ()  # the domain, then each CNAME target in order
    addresses: tuple[str, ...] = ()


class LookupFailure(Exception):
    def __init__(self, message: str, *, transient: bool, chain: tuple[str, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.chain = chain


@dataclass(frozen=True)
class Lookup:
    chain: tuple[str, ...]
    addresses: tuple[str, ...]


def parse_nameserver(text: str) -> tuple[str, int]:
    """ "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address → (ip, port)."""
    host, port = text, 53
    if text.startswith("["):
        inner, _, rest = text[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    return host, port


def make_resolver(
    nameservers: list[str], timeout: float = DEFAULT_TIMEOUT
) -> dns.resolver.Resolver:
    """A resolver for `nameservers`, or the system's when the list is empty. No cache:
    a user who just fixed a record must see the new answer."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_nameserver(s)) for s in nameservers
        ]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise UsageError(
                "this machine has no DNS resolvers configured (/etc/resolv.conf)",
                "set platform.dns.nameservers in hosting.yaml",
            ) from None
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    resolver.cache = None
    return resolver


def describe_servers(resolver: dns.resolver.Resolver) -> str:
    out = []
    for ns in resolver.nameservers:
        if isinstance(ns, dns.nameserver.Do53Nameserver):
            out.append(f"{ns.address}:{ns.port}" if ns.port != 53 else ns.address)
        else:
            out.append(str(ns))
    return ", ".join(out) or "none"


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def lookup(resolver: dns.resolver.Resolver, domain: str, rdtype: str) -> Lookup:
    """Addresses of `domain` for `rdtype` (A or AAAA), following CNAMEs across queries."""
    chain = [domain]
    current = domain
    servers = describe_servers(resolver)
    for _ in range(MAX_CNAME_HOPS):
        qname = dns.name.from_text(current)
        try:
            answer = resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            try:
                missing = _text(exc.canonical_name)
            except (TypeError, KeyError):
                missing = current
            if missing not in chain:
                chain.append(missing)
            if missing == domain:
                msg = f"{domain} does not exist in DNS (NXDOMAIN)"
            else:
                msg = f"{domain} is a CNAME to {missing}, which does not exist (NXDOMAIN)"
            raise LookupFailure(msg, transient=False, chain=tuple(chain)) from None
        except dns.resolver.LifetimeTimeout as exc:
            raise LookupFailure(
                f"no answer for {current} ({rdtype}) from {servers} within "
                f"{resolver.lifetime:g}s (timeout)",
                transient=True,
                chain=tuple(chain),
            ) from exc
        except dns.resolver.NoNameservers:
            raise LookupFailure(
                f"the DNS servers ({servers}) failed to answer for {current} (SERVFAIL)",
                transient=True,
                chain=tuple(chain),
            ) from None
        except dns.exception.DNSException as exc:
            raise LookupFailure(
                f"DNS lookup of {current} failed: {exc}", transient=True, chain=tuple(chain)
            ) from None
        for rrset in answer.chaining_result.cnames:
            for rr in rrset:
                target = _text(rr.target)
                if target not in chain:
                    chain.append(target)
        if answer.rrset is not None:
            found = sorted(str(ipaddress.ip_address(rr.address)) for rr in answer.rrset)
            return Lookup(tuple(chain), tuple(found))
        canonical = _text(answer.canonical_name)
        if canonical == current:
            return Lookup(tuple(chain), ())
        current = canonical  # the server gave the CNAME but not its target's records
    raise LookupFailure(
        f"{domain} has a CNAME chain longer than {MAX_CNAME_HOPS} (a loop?)",
        transient=False,
        chain=tuple(chain),
    )


def _via(chain: tuple[str, ...]) -> str:
    return f" (via CNAME {' → '.join(chain[1:])})" if len(chain) > 1 else ""


def check(spec: Spec, cd: CustomDomain, resolver: dns.resolver.Resolver) -> CheckResult:
    """Whether `cd`'s DNS sends its visitors (and the ACME CA) to this platform."""
    ipv4 = str(spec.platform.public_ipv4)
    ipv6 = spec.platform.public_ipv6
    try:
        a = lookup(resolver, cd.domain, "A")
    except LookupFailure as f:
        return CheckResult(cd.domain, False, f.message, f.transient, f.chain)
    targets = a.chain[1:]
    if cd.apex is not None and cd.apex in targets:
        return CheckResult(cd.domain, True, f"CNAME to {cd.apex}", chain=a.chain)
    if cd.apex is None and cd.hostname in targets:
        return CheckResult(cd.domain, True, f"CNAME to {cd.hostname}", chain=a.chain)
    if not a.addresses:
        if targets:
            msg = f"{cd.domain} is a CNAME to {targets[-1]}, which has no A record"
        else:
            msg = f"{cd.domain} has no A record (no answer)"
        return CheckResult(cd.domain, False, msg, chain=a.chain)
    wrong = [x for x in a.addresses if x != ipv4]
    if wrong:
        msg = (
            f"{cd.domain} points at {', '.join(wrong)}{_via(a.chain)}, not at the platform's {ipv4}"
        )
        return CheckResult(cd.domain, False, msg, chain=a.chain, addresses=a.addresses)
    try:
        aaaa = lookup(resolver, cd.domain, "AAAA")
    except LookupFailure as f:
        if f.transient:
            return CheckResult(cd.domain, False, f.message, True, a.chain, a.addresses)
        aaaa = Lookup(a.chain, ())
    wrong6 = [x for x in aaaa.addresses if ipv6 is None or ipaddress.ip_address(x) != ipv6]
    if wrong6:
        if ipv6 is None:
            msg = (
                f"{cd.domain} has AAAA {', '.join(wrong6)} but the platform has no IPv6 "
                "address: remove the AAAA record (IPv6 visitors would reach another server)"
            )
        else:
            msg = f"{cd.domain} has AAAA {', '.join(wrong6)}, not the platform's {ipv6}"
        return CheckResult(cd.domain, False, msg, chain=a.chain, addresses=a.addresses)
    reason = f"A → {ipv4}{_via(a.chain)}"
    if aaaa.addresses:
        reason += f", AAAA → {ipv6}"
    return CheckResult(
        cd.domain, True, reason, chain=a.chain, addresses=a.addresses + aaaa.addresses
    )
