"""Just enough X.509 DER reading to tell what certificate Caddy holds or serves: names,
issuer and validity. The standard library parses certificates only after verifying them,
and the platform must also describe certificates from CAs this machine does not trust
(Caddy's internal CA, a test CA), so this reads the few fields itself."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_OID_CN = bytes.fromhex("550403")
_OID_SAN = bytes.fromhex("551d11")
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)


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


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at `pos`."""
    if pos + 2 > len(data):
        raise CertificateParseError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise CertificateParseError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise CertificateParseError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, s, e = _tlv(data, pos)
        out.append((tag, s, e))
        pos = e
    return out


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime: YYMMDDHHMMSS, 50-99 are 19xx
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _common_name(data: bytes, start: int, end: int) -> str | None:
    for _set_tag, ss, se in _children(data, start, end):
        for _seq_tag, qs, qe in _children(data, ss, se):
            parts = _children(data, qs, qe)
            if len(parts) >= 2 and data[parts[0][1] : parts[0][2]] == _OID_CN:
                return data[parts[1][1] : parts[1][2]].decode("utf-8", errors="replace")
    return None


def _san(data: bytes, start: int, end: int) -> tuple[str, ...]:
    """dNSNames from the extensions ([3] EXPLICIT SEQUENCE OF Extension)."""
    _tag, s, e = _tlv(data, start)
    for _ext_tag, es, ee in _children(data, s, e):
        parts = _children(data, es, ee)
        if data[parts[0][1] : parts[0][2]] != _OID_SAN:
            continue
        _octet_tag, os_, _oe = parts[-1]
        _seq_tag, gs, ge = _tlv(data, os_)
        return tuple(
            data[ns:ne].decode("ascii", errors="replace")
            for tag, ns, ne in _children(data, gs, ge)
            if tag == 0x82
        )
    return ()


def parse_der(der: bytes) -> CertInfo:
    try:
        _tag, cs, _ce = _tlv(der, 0)
        _tag, ts, te = _tlv(der, cs)
        fields = _children(der, ts, te)
        i = 1 if fields and fields[0][0] == 0xA0 else 0  # optional [0] version
        issuer, validity, subject = fields[i + 2], fields[i + 3], fields[i + 4]
        (t1, s1, e1), (t2, s2, e2) = _children(der, validity[1], validity[2])[:2]
        ext = next((f for f in fields[i + 6 :] if f[0] == 0xA3), None)
        return CertInfo(
            subject_cn=_common_name(der, subject[1], subject[2]),
            issuer_cn=_common_name(der, issuer[1], issuer[2]),
            dns_names=_san(der, ext[1], ext[2]) if ext else (),
            not_before=_time(t1, der[s1:e1]),
            not_after=_time(t2, der[s2:e2]),
        )
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise CertificateParseError(f"not an X.509 certificate: {exc}") from None


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER of every certificate in a PEM bundle, in order (leaf first in Caddy's files)."""
    return [base64.b64decode(b"".join(m.split())) for m in _PEM_RE.findall(pem)]
