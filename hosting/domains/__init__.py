"""Custom domains: the DNS records they need, their verification, their certificates.

Only a verified domain gets an edge route and a certificate (`verified_domains` feeds
`hosting.edge.build_config`), so an unverified one never triggers an ACME order.
"""

from hosting.domains.certs import CertificateStatus, certificate_status
from hosting.domains.dnscheck import CheckResult, check, make_resolver
from hosting.domains.records import (
    CustomDomain,
    Record,
    RequiredRecords,
    custom_domains,
    required_records,
)
from hosting.domains.state import (
    RECHECK_INTERVAL,
    DomainState,
    newly_verified,
    recheck_pending,
    states,
    verified_domains,
    verify,
)

__all__ = [
    "RECHECK_INTERVAL",
    "CertificateStatus",
    "CheckResult",
    "CustomDomain",
    "DomainState",
    "Record",
    "RequiredRecords",
    "certificate_status",
    "check",
    "custom_domains",
    "make_resolver",
    "newly_verified",
    "recheck_pending",
    "required_records",
    "states",
    "verified_domains",
    "verify",
]
