"""Stable names derived from tenant and deployment ids.

Every name here is a pure function of the spec, so the same tenant and deployment get the
same subdomain, container, network and volume names on every run, on every machine.
Docker names use `_` as the separator: ids are DNS labels, which never contain `_`, so
`acme_shop` can never be confused with tenant `acme-s` and deployment `hop`.
"""

from __future__ import annotations

import base64
import hashlib

_TYPE_PREFIX = {"web": "web", "api": "api", "database": "db"}


def _digest(*parts: str, length: int = 6) -> str:
    raw = hashlib.sha256("/".join(parts).encode()).digest()
    return base64.b32encode(raw).decode().lower()[:length]


def subdomain_label(tenant: str, deployment: str, kind: str) -> str:
    """e.g. `web-k3x9q2`: DNS-safe, stable, and revealing nothing about the tenant."""
    return f"{_TYPE_PREFIX[kind]}-{_digest(tenant, deployment)}"


def hostname(tenant: str, deployment: str, kind: str, base_domain: str) -> str:
    return f"{subdomain_label(tenant, deployment, kind)}.{base_domain}"


def network_name(platform: str, tenant: str) -> str:
    return f"{platform}_{tenant}"


def container_name(platform: str, tenant: str, deployment: str, replica: int = 0) -> str:
    return f"{platform}_{tenant}_{deployment}_{replica}"


def volume_name(platform: str, tenant: str, deployment: str, purpose: str = "data") -> str:
    return f"{platform}_{tenant}_{deployment}_{purpose}"


def edge_name(platform: str) -> str:
    return f"{platform}_edge"


def database_name(deployment: str) -> str:
    """The product document's `db_<deployment id>`; PostgreSQL names cannot hold `-`."""
    return "db_" + deployment.replace("-", "_")


def service_name(platform: str, tenant: str, deployment: str) -> str:
    """A deployment's Swarm service (platform.target swarm): one for all its replicas."""
    return f"{platform}_{tenant}_{deployment}"
