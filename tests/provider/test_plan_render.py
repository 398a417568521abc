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
    assert doc["format_version"] == 1
    assert doc["summary"] == {"create": 1, "replace": 1, "update": 1, "delete": 0}
    acme = next(t for t in doc["tenants"] if t["tenant"] == "acme")
    assert acme["cost"]["monthly_after"] == "9.99" and acme["cost"]["monthly_delta"] == "0.00"
    assert acme["usage"][0]["text"] == "acme websites 1→2 of 10"
    assert doc["platform"] == [{"resource": "edge", "kind": "container", "op": "update"}]


def schema() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (REPO / "hosting" / "cli" / "plan.schema.json").read_text()
    )
    return loaded


def test_the_shipped_schema_accepts_the_document_and_rejects_drift() -> None:
    import jsonschema

    doc = json.loads(json.dumps(plan_json(sample())))
    jsonschema.validate(doc, schema())
    # A field the schema does not document, or money as a number, is refused.
    for broken in (
        {**doc, "extra": 1},
        {**doc, "format_version": 2},
        {
            **doc,
            "tenants": [
                {**doc["tenants"][0], "cost": {**doc["tenants"][0]["cost"], "monthly_after": 9.99}}
            ],
        },
    ):
        try:
            jsonschema.validate(broken, schema())
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"accepted: {sorted(broken)}")


def test_markdown_counts_each_tenant_and_folds_long_deployments() -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    steps = [step(f"acme_shop_{i}", "create") for i in range(12)]
    steps += [step("acme_api_0", "replace"), step("acme_api_1", "delete")]
    text = plan_text(report(spec, steps, {}, None), markdown=True)
    assert "## acme `+12` `~0` `±1` `-1`" in text
    assert "<details><summary>12 changes `+12` `~0` `±0` `-0`</summary>" in text
    # Tenants with nothing to change are counted, not listed.
    assert "## globex" not in text
    assert text.startswith("**Plan: 12 to create, 0 to update, 1 to replace, 1 to delete.**")


def test_markdown_of_a_thousand_changes_fits_a_github_comment_and_says_what_is_cut() -> None:
    tenants = [
        {
            "tenant": f"tenant{n:03d}",
            "summary": {"create": 15, "update": 0, "replace": 0, "delete": 0},
            "deployments": [
                {
                    "deployment": f"site{d}",
                    "changes": [
                        {
                            "resource": f"tenant{n:03d}_site{d}_0",
                            "kind": "container",
                            "op": "create",
                        },
                        {
                            "resource": f"tenant{n:03d}_site{d}_code",
                            "kind": "volume",
                            "op": "create",
                        },
                    ],
                }
                for d in range(5)
            ],
            "usage": [],
            "cost": None,
            "proration": None,
        }
        for n in range(200)  # 1,000 deployments
    ]
    doc = {
        "format_version": 1,
        "changes": True,
        "summary": {"create": 3000, "update": 0, "replace": 0, "delete": 0},
        "tenants": tenants,
        "platform": [],
    }
    text = plan_text(doc, markdown=True)
    assert len(text) <= 65_536
    assert "**Cut to fit a comment:" in text
    shown = [t["tenant"] for t in tenants if f"## {t['tenant']} " in text]
    listed = [t["tenant"] for t in tenants if f"- {t['tenant']} `+15` `~0` `±0` `-0`" in text]
    # Every tenant is either shown in full or listed by its counts, in order.
    assert shown and listed and shown + listed == [t["tenant"] for t in tenants]
    assert f"**Cut to fit a comment: {len(listed)} tenant(s) with changes" in text
