"""How `plan` reads: text for people, Markdown for pull-request comments, JSON for CI.

JSON is the one document (schema: hosting/cli/plan.schema.json, `"format_version": 1`); text
and Markdown are rendered from it, so `plan` and `show FILE` print a saved plan alike.
Pure: a PlanReport or its document in, a string or a document out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hosting.cli.output import to_jsonable

FORMAT_VERSION = 1
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "import": "=", "read": ">"}
OPS = ("create", "update", "replace", "delete")
# The Markdown's per-tenant counts: `±` for a replacement, as in the pull-request comment.
COUNT_SYMBOL = {"create": "+", "update": "~", "replace": "±", "delete": "-"}
# GitHub refuses a comment over 65,536 characters; leave room for the comment's own header.
MARKDOWN_LIMIT = 60_000
COLLAPSE_AFTER = 10  # a deployment with more changes than this shows them folded


def proration_text(impact: Any) -> str:
    """One proration line, from an impact object or its JSON."""
    get = impact.get if isinstance(impact, dict) else lambda k: getattr(impact, k)
    delta = Decimal(str(get("delta")))
    sign = "+" if delta >= 0 else "-"
    return (
        f"{get('change')} on {get('effective')}: base charges {sign}${abs(delta):.2f}"
        f" ({get('note')})"
    )


def _counts(ops: list[str]) -> dict[str, int]:
    return {op: ops.count(op) for op in OPS}


def plan_json(rep: Any, migrations: list[Any] | None = None) -> dict[str, Any]:
    """The versioned document: per-resource actions, per-tenant counts, usage, cost, and the
    PostgreSQL major upgrades (`migrations`: hosting.databases.upgrade.Upgrade) apply makes."""

    def steps(items: list[Any]) -> list[dict[str, Any]]:
        return [{"resource": s.name, "kind": s.kind, "op": s.op} for s in items]

    tenants = []
    for t in rep.tenants:
        ops = [s.op for items in t.deployments.values() for s in items]
        tenants.append(
            {
                "tenant": t.tenant,
                "summary": _counts(ops),
                "deployments": [
                    {"deployment": d or None, "changes": steps(items)}
                    for d, items in t.deployments.items()
                ],
                "usage": [
                    {
                        "type": u.kind,
                        "before": u.before,
                        "after": u.after,
                        "allowed": u.allowed,
                        "text": u.text(t.tenant),
                    }
                    for u in t.usage
                ],
                "cost": None
                if t.cost is None
                else {
                    "plan_before": t.cost.plan_before,
                    "plan_after": t.cost.plan_after,
                    "monthly_before": t.cost.monthly_before,
                    "monthly_after": t.cost.monthly_after,
                    "monthly_delta": t.cost.delta,
                    "text": t.cost.text(),
                },
                "proration": None
                if t.proration is None
                else {
                    "change": t.proration.change,
                    "effective": t.proration.effective,
                    "old_base": t.proration.old_base,
                    "new_base": t.proration.new_base,
                    "delta": t.proration.delta,
                    "note": t.proration.note,
                },
            }
        )
    for entry in tenants:
        mine = [m for m in migrations or [] if m.tenant == entry["tenant"]]
        if mine:  # only then: older documents and tools know no such field
            entry["migrations"] = [
                {"deployment": m.deployment, "from_version": m.old, "to_version": m.new,
                 "text": f"data migration {m.describe()} (old volume kept until backup prune)"}
                for m in mine
            ]  # fmt: skip
    platform_ops = [s.op for s in rep.platform]
    all_ops = platform_ops + [s.op for t in rep.tenants for d in t.deployments.values() for s in d]
    doc = {
        "format_version": FORMAT_VERSION,
        "changes": rep.changed,
        "summary": _counts(all_ops),
        "tenants": tenants,
        "platform": steps(rep.platform),
    }
    result: dict[str, Any] = to_jsonable(doc)
    return result


def _doc(plan: Any) -> dict[str, Any]:
    return plan if isinstance(plan, dict) else plan_json(plan)


def _total_line(doc: dict[str, Any]) -> str:
    if not doc["changes"]:
        return "No changes."
    words = ", ".join(f"{doc['summary'].get(op, 0)} to {op}" for op in OPS)
    return f"Plan: {words}."


def _tenant_notes(t: dict[str, Any]) -> list[str]:
    notes = [f"{m['deployment']}: {m['text']}" for m in t.get("migrations", [])]
    usage = " · ".join(u["text"] for u in t["usage"])
    if usage:
        notes.append(f"usage: {usage}")
    if t["cost"] is not None:
        notes.append(f"cost: {t['cost']['text']}")
    if t["proration"] is not None:
        notes.append(f"billing: {proration_text(t['proration'])}")
    return notes


def plan_text(plan: Any, *, markdown: bool) -> str:
    doc = _doc(plan)
    if markdown:
        return plan_markdown(doc)
    lines: list[str] = []
    for t in doc["tenants"]:
        lines.append(t["tenant"])
        for dep in t["deployments"]:
            lines.append(f"  {dep['deployment'] or '(tenant network)'}")
            for s in dep["changes"]:
                lines.append(
                    f"    {SYMBOL.get(s['op'], ' ')} {s['op']:<8} {s['kind']} {s['resource']}"
                )
        if not t["deployments"]:
            lines.append("  no changes")
        lines.extend(f"  {note}" for note in _tenant_notes(t))
        lines.append("")
    if doc["platform"]:
        lines.append("platform (edge)")
        for s in doc["platform"]:
            lines.append(f"    {SYMBOL.get(s['op'], ' ')} {s['op']} {s['kind']} {s['resource']}")
        lines.append("")
    lines.append(_total_line(doc))
    return "\n".join(lines)


def _count_badges(summary: dict[str, int]) -> str:
    return " ".join(f"`{COUNT_SYMBOL[op]}{summary.get(op, 0)}`" for op in OPS)


def _markdown_tenant(t: dict[str, Any]) -> list[str]:
    lines = [f"## {t['tenant']} {_count_badges(t['summary'])}"]
    for note in _tenant_notes(t):
        lines.append(f"- {note}")
    for dep in t["deployments"]:
        changes = dep["changes"]
        items = [
            f"- `{SYMBOL.get(s['op'], ' ')} {s['op']}` {s['kind']} {s['resource']}" for s in changes
        ]
        title = f"### {dep['deployment'] or '(tenant network)'}"
        if len(changes) > COLLAPSE_AFTER:
            counts = _count_badges(_counts([s["op"] for s in changes]))
            lines += [title, f"<details><summary>{len(changes)} changes {counts}</summary>", ""]
            lines += [*items, "", "</details>"]
        else:
            lines += [title, *items]
    if not t["deployments"]:
        lines.append("no changes")
    lines.append("")
    return lines


def plan_markdown(doc: dict[str, Any], limit: int = MARKDOWN_LIMIT) -> str:
    """Counts per tenant (`+ ~ ± -`), cost and quota lines, long deployments folded, and
    never longer than `limit`: tenants that do not fit are listed with their counts only,
    under a line that says the comment was cut and where the whole plan is."""
    platform = doc["platform"]
    lines = [f"**{_total_line(doc)}**", ""]
    if platform:
        lines.append(f"## platform (edge) {_count_badges(_counts([s['op'] for s in platform]))}")
        lines += [
            f"- `{SYMBOL.get(s['op'], ' ')} {s['op']}` {s['kind']} {s['resource']}"
            for s in platform
        ]
        lines.append("")
    changed = [t for t in doc["tenants"] if t["deployments"] or t["proration"] is not None]
    unchanged = len(doc["tenants"]) - len(changed)
    size = sum(len(line) + 1 for line in lines)
    cut: list[dict[str, Any]] = []
    for i, t in enumerate(changed):
        block = _markdown_tenant(t)
        block_size = sum(len(line) + 1 for line in block)
        # Room for the cut notice and a one-line entry for each tenant after this one.
        reserve = 600 + 60 * min(len(changed) - i, 300)
        if cut or size + block_size + reserve > limit:
            cut.append(t)
            continue
        lines += block
        size += block_size
    if unchanged:
        lines += [f"{unchanged} tenant(s) unchanged.", ""]
    if cut:
        lines += [
            f"**Cut to fit a comment: {len(cut)} tenant(s) with changes are listed by their "
            "counts only.** The whole plan: `hosting show FILE` on the saved plan, or "
            "`hosting plan`.",
            "",
        ]
        size = sum(len(line) + 1 for line in lines)
        for shown, t in enumerate(cut):
            line = f"- {t['tenant']} {_count_badges(t['summary'])}"
            if size + len(line) + 100 > limit:
                lines.append(f"- … and {len(cut) - shown} more")
                break
            lines.append(line)
            size += len(line) + 1
    return "\n".join(lines).rstrip("\n") + "\n"
