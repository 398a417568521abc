"""The JSON Schema of hosting.yaml, for editors (yaml-language-server) and CI linters.

It is generated from the models, then adjusted where the file is more permissive than the
validated model: plan entries may be partial overrides, env values may be numbers.
"""

from __future__ import annotations

import copy
from typing import Any

from hosting.spec.models import Spec


def json_schema() -> dict[str, Any]:
    schema = copy.deepcopy(Spec.model_json_schema(mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hosting.yaml"
    defs = schema.get("$defs", {})
    plan = copy.deepcopy(defs["Plan"])
    plan["required"] = []
    plan["properties"].pop("name", None)
    plan["description"] = (
        "A plan. A default plan's name (free, starter, pro, enterprise) overrides only the "
        "fields given; a new name must give every field but `features`."
    )
    defs["PlanInput"] = plan
    schema["properties"]["plans"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/$defs/PlanInput"},
    }
    for name in ("WebDeployment", "ApiDeployment"):
        env = defs[name]["properties"]["env"]
        env["additionalProperties"] = {"type": ["string", "number", "boolean"]}
    for prop in _walk(schema):
        # Decimals are numbers in YAML; pydantic's schema offers strings too, keep both.
        if prop.get("anyOf") and {"type": "number"} in prop["anyOf"]:
            prop["anyOf"] = [
                a for a in prop["anyOf"] if not (a.get("type") == "string" and "pattern" in a)
            ]
    return schema


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found
