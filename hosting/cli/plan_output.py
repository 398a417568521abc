"""How `plan` reads: text for people, Markdown for pull-request comments, JSON for CI.
Pure: a PlanReport in, a string or a document out."""

from __future__ import annotations

from typing import Any

SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "import": "=", "read": ">"}


def proration_text(impact: Any) -> str:
    sign = "+" if impact.delta >= 0 else "-"
    return (
        f"{impact.change} on {impact.effective}: base charges {sign}${abs(impact.delta):.2f}"
        f" ({impact.note})"
    )


def plan_json(rep: Any) -> dict[str, Any]:
    def steps(items: list[Any]) -> list[dict[str, Any]]:
        return [{"resource": s.name, "kind": s.kind, "op": s.op} for s in items]

    return {
        "changes": rep.changed,
        "summary": rep.counts,
        "tenants": [
            {
                "tenant": t.tenant,
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
            for t in rep.tenants
        ],
        "platform": steps(rep.platform),
    }


def plan_text(rep: Any, *, markdown: bool) -> str:
    lines: list[str] = []
    h1, h2, bullet = ("## ", "### ", "- ") if markdown else ("", "  ", "    ")
    for t in rep.tenants:
        lines.append(f"{h1}{t.tenant}")
        for dep, items in t.deployments.items():
            lines.append(f"{h2}{dep or '(tenant network)'}")
            for s in items:
                sym = SYMBOL.get(s.op, " ")
                code = f"`{sym} {s.op}`" if markdown else f"{sym} {s.op:<8}"
                lines.append(f"{bullet}{code} {s.kind} {s.name}")
        if not t.deployments:
            lines.append(f"{h2}no changes")
        usage = " · ".join(u.text(t.tenant) for u in t.usage)
        if usage:
            lines.append(f"{h2}usage: {usage}")
        if t.cost is not None:
            lines.append(f"{h2}cost: {t.cost.text()}")
        if t.proration is not None:
            lines.append(f"{h2}billing: {proration_text(t.proration)}")
        lines.append("")
    if rep.platform:
        lines.append(f"{h1}platform (edge)")
        for s in rep.platform:
            lines.append(f"{bullet}{SYMBOL.get(s.op, ' ')} {s.op} {s.kind} {s.name}")
        lines.append("")
    counts = rep.counts
    words = ", ".join(
        f"{counts.get(op, 0)} to {op}" for op in ("create", "update", "replace", "delete")
    )
    lines.append(f"Plan: {words}." if rep.changed else "No changes.")
    return "\n".join(lines)


# -- apply / destroy / refresh ---------------------------------------------------------------
