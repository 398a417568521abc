"""`plan` output in text, markdown and JSON, from a report (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import hosting
from hosting.cli.output import to_jsonable
from hosting.cli.plan_output import plan_json, plan_text
from hosting.provider.changes import report
from hosting.provider.events import Step, place_of

REPO = Path(__file__).resolve().parents[2]


def step(name: str, op: str, kind: str = "container") -> Step:
    tenant, dep = place_of(name)
    return Step(f"urn::{name}", name, kind, op, tenant, dep)


def sample() -> object:
    spec = hosting.load(REPO / "hosting.yaml")
    previous = {
        "acme": {"plan": "starter", "billing_cycle": "monthly"},
        "acme/shop": {"type": "web"},
    }
    steps = [
        step("acme_api_0", "create"),
        step("acme_shop_0", "replace"),
        step("edge", "update"),
    ]
    return report(spec, steps, previous, None)


def test_text_groups_by_tenant_and_deployment() -> None:
    text = plan_text(sample(), markdown=False)
    lines = text.splitlines()
    acme = lines.index("acme")
    assert lines[acme + 1 : acme + 5] == [
        "  api",
        "    + create   container acme_api_0",
        "  shop",
        "    +- replace  container acme_shop_0",
    ]
    assert (
        "  usage: acme websites 1→2 of 10 · acme APIs 0→1 of 10 · acme databases 0→1 of 3" in lines
    )
    assert "  cost: $9.99/mo on starter, unchanged" in lines
    assert lines[-1] == "Plan: 1 to create, 1 to update, 1 to replace, 0 to delete."


def test_markdown_uses_headings_and_code() -> None:
    text = plan_text(sample(), markdown=True)
    assert "## acme" in text and "### shop" in text
    assert "- `+- replace` container acme_shop_0" in text


def test_json_is_one_document_with_money_as_strings() -> None:
    doc = json.loads(json.dumps(to_jsonable(plan_json(sample()))))
    assert doc["changes"] is True
    assert doc["summary"] == {"create": 1, "replace": 1, "update": 1}
    acme = next(t for t in doc["tenants"] if t["tenant"] == "acme")
    assert acme["cost"]["monthly_after"] == "9.99" and acme["cost"]["monthly_delta"] == "0.00"
    assert acme["usage"][0]["text"] == "acme websites 1→2 of 10"
    assert doc["platform"] == [{"resource": "edge", "kind": "container", "op": "update"}]
