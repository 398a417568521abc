"""What certificate Caddy holds or serves: names, issuer and validity.

`cryptography.x509` parses a certificate without verifying it, which the platform needs: it
describes certificates from CAs this machine does not trust (Caddy's internal CA, a test CA).
The standard library's `ssl` only parses what it has verified."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


class CertificateParseError(ValueError):
    pass


@dataclass(frozen=True)
class CertInfo:
    subject_cn: str | None
    issuer_cn: str | None
    dns_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    def covers(self, domain: str) -> bool:
        names = self.dns_names or ((self.subject_cn,) if self.subject_cn else ())
        return domain.lower() in (n.lower() for n in names)


def _common_name(name: x509.Name) -> str | None:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = found[0].value if found else None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))


def parse_der(der: bytes) -> CertInfo:
    try:
        cert = x509.load_der_x509_certificate(der)
        return CertInfo(
            subject_cn=_common_name(cert.subject),
            issuer_cn=_common_name(cert.issuer),
            dns_names=_dns_names(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
    except ValueError as exc:  # cryptography's parse errors are ValueErrors
        raise CertificateParseError(f"not an X.509 certificate: {exc}") from None


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER of every certificate in a PEM bundle, in order (leaf first in Caddy's files)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []
    return [c.public_bytes(Encoding.DER) for c in certs]
