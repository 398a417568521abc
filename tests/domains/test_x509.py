"""The certificate reader against certificates made by openssl, checked against openssl's
own view."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hosting.domains.certs import certificate_status, stored_certificate
from hosting.domains.x509 import CertificateParseError, parse_der, pem_certificates


def _openssl_cert(tmp: Path, cn: str, sans: list[str], days: int, key: str) -> Path:
    out = tmp / f"{cn}.pem"
    cmd = [
        "openssl", "req", "-x509", "-nodes", "-newkey", key, "-keyout", str(tmp / "k.pem"),
        "-out", str(out), "-subj", f"/CN={cn}", "-days", str(days),
    ]  # fmt: skip
    if sans:
        cmd += ["-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def _openssl_date(path: Path, which: str) -> datetime:
    text = subprocess.run(
        ["openssl", "x509", "-noout", f"-{which}", "-in", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split("=", 1)[1]  # fmt: skip
    return datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)


@pytest.mark.parametrize("key", ["rsa:2048", "ec:/dev/null"])
def test_reads_names_and_validity(tmp_path: Path, key: str) -> None:
    if key.startswith("ec"):
        params = tmp_path / "ec.pem"
        subprocess.run(
            ["openssl", "ecparam", "-name", "prime256v1", "-out", str(params)], check=True
        )
        key = f"ec:{params}"
    pem = _openssl_cert(tmp_path, "shop.example.test", ["shop.example.test", "www.x.test"], 30, key)
    (der,) = pem_certificates(pem.read_bytes())
    info = parse_der(der)
    assert info.subject_cn == "shop.example.test"
    assert info.issuer_cn == "shop.example.test"  # self-signed
    assert info.dns_names == ("shop.example.test", "www.x.test")
    assert info.not_before == _openssl_date(pem, "startdate")
    assert info.not_after == _openssl_date(pem, "enddate")
    assert info.covers("www.x.test") and not info.covers("x.test")


def test_garbage_is_a_parse_error() -> None:
    with pytest.raises(CertificateParseError):
        parse_der(b"\x30\x82\x01\x00not a certificate")


def test_storage_layout_and_states(tmp_path: Path) -> None:
    domain = "shop.example.test"
    folder = tmp_path / "caddy" / "certificates" / "127.0.0.1-14000-dir" / domain
    folder.mkdir(parents=True)
    pem = _openssl_cert(tmp_path, domain, [domain], 90, "rsa:2048")
    (folder / f"{domain}.crt").write_bytes(pem.read_bytes())
    assert stored_certificate(tmp_path, "other.example.test") is None
    stored = stored_certificate(tmp_path, domain)
    assert stored is not None and stored.not_after == _openssl_date(pem, "enddate")

    status = certificate_status(domain, caddy_data=tmp_path)
    assert status.state == "issued"
    assert status.not_after == _openssl_date(pem, "enddate")
    # Caddy renews with a third of the lifetime left: 90 days → 30 days before the end.
    assert status.renew_after is not None
    assert (status.not_after - status.renew_after).days == 30

    later = certificate_status(domain, caddy_data=tmp_path, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert later.state == "expired"
    assert certificate_status("none.example.test", caddy_data=tmp_path).state == "pending"


def test_a_bundle_gives_every_certificate_leaf_first(tmp_path: Path) -> None:
    leaf = _openssl_cert(tmp_path, "leaf.example.test", ["leaf.example.test"], 5, "rsa:2048")
    ca = _openssl_cert(tmp_path, "Some Test CA", [], 50, "rsa:2048")
    bundle = leaf.read_bytes() + ca.read_bytes()
    names = [parse_der(der).subject_cn for der in pem_certificates(bundle)]
    assert names == ["leaf.example.test", "Some Test CA"]
    assert parse_der(pem_certificates(ca.read_bytes())[0]).dns_names == ()
    assert pem_certificates(b"no certificate here") == []
