"""Suspension through the real edge (issue 15): an unpaid invoice goes reminder → reminder →
suspension on a fixed clock (`payments dunning --as-of`); the next apply stops the tenant's
site and the edge answers 402 while its database keeps running; once the invoice is paid the
suspension lifts and the next apply brings the site back with 200.

Written for the lead's engine run (marker `engine`); it needs no Stripe: dunning without
`platform.payments` records its retries as not attempted.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from hosting.spec import names
from tests.engine.conftest import PLATFORM, Project, edge_root_ca, https_get

pytestmark = pytest.mark.engine

SPEC = (
    PLATFORM.replace(
        "tenants:\n",
        "  billing: {{legal_name: Demo Hosting Ltd, address: 1 Main St, suspend_after_days: 5}}\n"
        "tenants:\n",
    )
    + """\
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-09-03
    deployments:
      site:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        health: {{path: /healthz, interval_s: 1}}
      main: {{type: database}}
"""
)


def running(name: str) -> bool:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True
    )
    return out.returncode == 0 and out.stdout.strip() == "true"


def test_unpaid_suspends_with_402_and_paid_serves_again(project: Project) -> None:
    project.write(SPEC.format(platform=project.platform))
    project.ok("apply", "--yes")
    site = names.hostname("acme", "site", "web", "apps.test")
    web = names.container_name(project.platform, "acme", "site", 0)
    db = names.container_name(project.platform, "acme", "main", 0)
    ctx = edge_root_ca(project.platform, project.folder)
    assert https_get(ctx, site) == (200, "ok\n")

    # The Sep 3 – Oct 3 invoice, due Oct 17 (14 days' terms).
    project.ok("invoice", "run", "--as-of", "2026-10-03")
    [inv] = json.loads(project.ok("invoice", "list", "--json").stdout)["invoices"]
    steps = []
    for day in ("2026-10-18", "2026-10-20", "2026-10-22"):  # due + 1, + 3, + 5
        out = json.loads(project.ok("payments", "dunning", "--as-of", day, "--json").stdout)
        steps += [(s["step"], s["day"]) for s in out["steps"] if s["step"] != "retry"]
    assert steps == [("reminder", 1), ("reminder", 3), ("suspend", 5)]

    status = json.loads(project.ok("status", "--json").stdout)
    assert [s["tenant"] for s in status["suspended"]] == ["acme"]
    project.ok("apply", "--yes")
    assert not running(web) and running(db)  # the site stopped, the data kept
    code, body = https_get(ctx, site)
    assert code == 402 and "Payment required" in body

    project.ok("invoice", "mark", inv["invoice_number"], "paid")
    lifted = json.loads(project.ok("payments", "dunning", "--as-of", "2026-10-23", "--json").stdout)
    assert [s["step"] for s in lifted["steps"]] == ["unsuspend"]
    project.ok("apply", "--yes")
    assert running(web)
    assert https_get(ctx, site) == (200, "ok\n")
