"""platform.billing, platform.smtp and the tenant's billing fields (issue 15, SPEC §6)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hosting.errors import SpecError
from hosting.spec import loads
from tests.conftest import run_hosting

BROKEN = Path(__file__).parent / "broken"

FULL = """\
version: 1
platform:
  name: demo
  domain: apps.localhost
  public_ipv4: 127.0.0.1
  billing:
    legal_name: Demo Hosting Ltd
    address: |
      1 Main Street
      Springfield
    tax_id: GB123456789
    payment_terms_days: 30
    footer: Thank you.
    suspend_after_days: 21
  smtp:
    host: 127.0.0.1
    port: 2525
    from: Demo Billing <billing@demo.test>
    username: {env: SMTP_USER}
    password: {file: /run/secrets/smtp}
tenants:
  acme:
    name: Acme Corp
    email: billing@acme.test
    plan: starter
    started: 2026-11-03
    billing_address: 2 Side Street
    tax_id: DE811907980
    tax_rate: 19.5
"""


def test_every_field_read() -> None:
    spec = loads(FULL)
    b, smtp = spec.platform.billing, spec.platform.smtp
    assert b is not None and smtp is not None
    assert (b.legal_name, b.address, b.tax_id) == (
        "Demo Hosting Ltd",
        "1 Main Street\nSpringfield\n",
        "GB123456789",
    )
    assert (b.payment_terms_days, b.footer, b.suspend_after_days) == (30, "Thank you.", 21)
    assert (smtp.host, smtp.port, smtp.from_, smtp.starttls) == (
        "127.0.0.1",
        2525,
        "Demo Billing <billing@demo.test>",
        True,  # the default: STARTTLS unless the file says otherwise
    )
    assert smtp.username is not None and smtp.username.env == "SMTP_USER"
    assert smtp.password is not None and smtp.password.file == "/run/secrets/smtp"
    acme = spec.tenants["acme"]
    assert (acme.billing_address, acme.tax_id, acme.tax_rate) == (
        "2 Side Street",
        "DE811907980",
        Decimal("19.5"),
    )


def test_defaults_without_the_optional_fields() -> None:
    spec = loads(
        FULL.replace("    payment_terms_days: 30\n", "").replace("    suspend_after_days: 21\n", "")
    )
    assert spec.platform.billing is not None
    assert spec.platform.billing.payment_terms_days == 14
    assert spec.platform.billing.suspend_after_days is None


def test_username_without_password_is_refused() -> None:
    text = FULL.replace("    password: {file: /run/secrets/smtp}\n", "")
    with pytest.raises(SpecError) as info:
        loads(text)
    assert info.value.lines() == [
        "hosting.yaml:16:5: error: platform.smtp: give both `username` and `password`, or neither"
    ]


def test_literal_smtp_password_is_not_echoed() -> None:
    result = run_hosting("-f", "smtp_literal_password.yaml", "validate", cwd=BROKEN)
    assert result.returncode == 1
    assert "hunter2-smtp" not in result.stderr + result.stdout
    assert "platform.smtp.password: secrets are never written in the file" in result.stderr
