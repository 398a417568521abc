"""The plan report: grouping, usage before→after, cost impact."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import hosting
from hosting.provider.changes import report
from hosting.provider.events import Step

REPO = Path(__file__).resolve().parents[2]


def step(name: str, op: str = "create", kind: str = "container") -> Step:
    from hosting.provider.events import place_of

    tenant, dep = place_of(name)
    return Step(f"urn::{name}", name, kind, op, tenant, dep)


def test_first_plan_counts_from_zero_and_prices_new_tenants() -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    rep = report(spec, [step("acme_shop_0"), step("acme_shop_1"), step("edge")], {})
    acme = next(t for t in rep.tenants if t.tenant == "acme")
    assert list(acme.deployments) == ["shop"]
    texts = [u.text("acme") for u in acme.usage]
    # acme (starter, 10/10/3): shop + docs are websites, api is an API, main a database
    assert texts == [
        "acme websites 0→2 of 10",
        "acme APIs 0→1 of 10",
        "acme databases 0→1 of 3",
    ]
    assert acme.cost is not None
    assert acme.cost.text() == "+$9.99/mo (new tenant on starter)"
    assert [s.name for s in rep.platform] == ["edge"]
    assert rep.counts == {"create": 3}


def test_usage_after_a_change_and_plan_change_cost() -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    previous = {
        "acme": {"plan": "free", "billing_cycle": "monthly"},
        "acme/shop": {"type": "web"},
        "acme/main": {"type": "database"},
    }
    rep = report(spec, [step("acme_api_0")], previous, tenant_filter="acme")
    [acme] = rep.tenants
    assert acme.usage[0].text("acme") == "acme websites 1→2 of 10"
    assert acme.usage[1].text("acme") == "acme APIs 0→1 of 10"
    assert acme.cost is not None and acme.cost.delta == Decimal("9.99")
    assert acme.cost.text() == "$0.00 → $9.99/mo (+$9.99, free → starter)"
    assert rep.platform == []


def test_a_tenant_gone_from_the_file_shows_its_removal() -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    previous = {"oldco": {"plan": "pro", "billing_cycle": "monthly"}, "oldco/site": {"type": "web"}}
    rep = report(spec, [step("oldco_site_0", "delete")], previous)
    old = next(t for t in rep.tenants if t.tenant == "oldco")
    assert old.deployments["site"][0].op == "delete"
    assert old.cost is not None and old.cost.text() == "-$29.99/mo (tenant removed from pro)"


def test_no_steps_means_no_changes() -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    assert not report(spec, [], {}).changed
