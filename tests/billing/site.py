"""A site whose invoices are legal documents: a seller, a taxed tenant with an address, and
(optionally) an SMTP server; used by the PDF and delivery tests (issue 15)."""

from __future__ import annotations

from pathlib import Path

NUMBER = "INV-20260203-000001"  # acme's first period, 2026-01-03 → 2026-02-03

# By hand: starter 9.99; tax 19 % of 9.99 = 1.8981 → 1.90; total 11.89. Issued on the run's
# as-of day 2026-02-03 with 30 days' terms: due 2026-03-05 (February 2026 has 28 days).
TOTAL, TAX, DUE = "11.89", "1.90", "2026-03-05"


def write_site(root: Path, smtp: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hosting.yaml").write_text(
        "version: 1\n"
        "platform:\n  name: demo\n  domain: apps.localhost\n  public_ipv4: 127.0.0.1\n"
        f"  docker: {{host: 'unix://{root}/no-docker.sock'}}\n"
        "  billing:\n"
        "    legal_name: Demo Hosting Ltd\n"
        "    address: |\n      1 Main Street\n      Springfield 4242\n"
        "    tax_id: GB123456789\n"
        "    payment_terms_days: 30\n"
        "    footer: Bank transfer to IBAN GB00 DEMO 0000 0000 0000 00.\n"
        f"{smtp}"
        "tenants:\n"
        "  acme:\n    name: Acme Corp\n    email: billing@acme.test\n    plan: starter\n"
        "    started: 2026-01-03\n"
        "    billing_address: |\n      2 Side Street\n      Shelbyville\n"
        "    tax_id: DE811907980\n"
        "    tax_rate: 19\n"
        "    deployments:\n      shop: {type: web, image: x, port: 80}\n"
    )
    return root
