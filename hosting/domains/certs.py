"""Certificate state as Caddy has it: pending → issued → active.

- issued: Caddy's storage holds a certificate for the domain
  (`<data>/caddy/certificates/<issuer>/<domain>/<domain>.crt`);
- active: the edge presents a certificate covering the domain in a TLS handshake with that
  server name (SNI);
- pending: neither yet. Caddy renews by itself when a third of the lifetime is left
  (`renew_after`); a certificate past `not_after` is `expired`.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hosting.domains.x509 import CertificateParseError, CertInfo, parse_der, pem_certificates

PENDING, ISSUED, ACTIVE, EXPIRED = "pending", "issued", "active", "expired"
HANDSHAKE_TIMEOUT = 3.0


@dataclass(frozen=True)
class CertificateStatus:
    domain: str
    state: str
    issuer: str | None = None
    not_after: datetime | None = None
    renew_after: datetime | None = None
    detail: str | None = None


def stored_certificate(caddy_data: Path, domain: str) -> CertInfo | None:
    """The newest certificate for `domain` in Caddy's storage (`caddy_data` is Caddy's data
    directory, e.g. /data in the container or $XDG_DATA_HOME/caddy; both layouts work)."""
    roots = [caddy_data / "certificates", caddy_data / "caddy" / "certificates"]
    found: list[CertInfo] = []
    for root in roots:
        if not root.is_dir():
            continue
        for crt in root.glob(f"*/{domain}/{domain}.crt"):
            try:
                ders = pem_certificates(crt.read_bytes())
                if ders:
                    found.append(parse_der(ders[0]))
            except (OSError, CertificateParseError):
                continue
    return max(found, key=lambda c: c.not_after, default=None)


def served_certificate(
    host: str, port: int, domain: str, timeout: float = HANDSHAKE_TIMEOUT
) -> CertInfo | None:
    """The leaf the edge presents for `domain` (SNI), or None when it presents none.
    Unverified on purpose: this asks *what* is served, trust is the visitor's question."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=domain) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    if not der:
        return None
    try:
        return parse_der(der)
    except CertificateParseError:
        return None


def _renew_after(info: CertInfo) -> datetime:
    return info.not_after - (info.not_after - info.not_before) / 3


def certificate_status(
    domain: str,
    *,
    caddy_data: Path | None = None,
    edge: tuple[str, int] | None = None,
    now: datetime | None = None,
) -> CertificateStatus:
    at = (now or datetime.now(UTC)).astimezone(UTC)
    served = served_certificate(edge[0], edge[1], domain) if edge else None
    if served is not None and not served.covers(domain):
        served = None
    stored = stored_certificate(caddy_data, domain) if caddy_data else None
    info = served or stored
    if info is None:
        return CertificateStatus(domain, PENDING, detail="no certificate yet")
    if info.not_after <= at:
        state = EXPIRED
    elif served is not None:
        state = ACTIVE
    else:
        state = ISSUED
    where = "served by the edge" if served is not None else "in Caddy's storage"
    return CertificateStatus(
        domain,
        state,
        issuer=info.issuer_cn,
        not_after=info.not_after,
        renew_after=_renew_after(info),
        detail=where,
    )
