"""The example file, the JSON Schema, `init`, and the Python API of SPEC.md section 5."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import hosting
from tests.conftest import REPO, run_hosting


def _as_editor_sees_it(value: Any) -> Any:
    """YAML dates arrive as date objects; an editor's schema check sees strings."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _as_editor_sees_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_sees_it(v) for v in value]
    return value


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = run_hosting("schema")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_example_validates() -> None:
    result = run_hosting("validate", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "valid (4 tenants, 9 deployments)" in result.stdout


def test_example_validate_json() -> None:
    result = run_hosting("validate", "--json", cwd=REPO)
    doc = json.loads(result.stdout)
    assert doc["valid"] is True
    acme = next(t for t in doc["tenants"] if t["id"] == "acme")
    assert acme["usage"]["web"] == {"used": 2, "allowed": 10}
    assert {d["id"] for d in acme["deployments"]} == {"shop", "api", "main", "docs"}
    by_id = {d["id"]: d for d in acme["deployments"]}
    assert by_id["main"]["hostname"] is None  # reached on database_bind, not via the edge
    assert by_id["shop"]["hostname"].startswith("web-")
    assert by_id["shop"]["hostname"].endswith(".apps.localhost")


def test_schema_accepts_the_example(schema: dict[str, Any]) -> None:
    data = _as_editor_sees_it(yaml.safe_load((REPO / "hosting.yaml").read_text()))
    jsonschema.Draft202012Validator(schema).validate(data)


def test_schema_rejects_a_typo(schema: dict[str, Any]) -> None:
    data = _as_editor_sees_it(yaml.safe_load((REPO / "hosting.yaml").read_text()))
    data["tenants"]["acme"]["deployments"]["shop"]["replcas"] = 2
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert any("replcas" in e.message for e in errors)


def test_schema_rejects_unknown_deployment_type(schema: dict[str, Any]) -> None:
    data = _as_editor_sees_it(yaml.safe_load((REPO / "hosting.yaml").read_text()))
    data["tenants"]["acme"]["deployments"]["shop"]["type"] = "lambda"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data))


def test_python_api_load_and_error(tmp_path: Path) -> None:
    spec = hosting.load(REPO / "hosting.yaml")
    assert spec.platform.name == "demo"
    # Overrides: starter keeps its price but takes the file's storage; team is new.
    assert spec.plans["starter"].storage_gb == 20
    assert spec.plans["starter"].price_monthly == Decimal("9.99")
    assert spec.plans["team"].price_yearly == Decimal("199.90")
    assert spec.tenants["acme"].plan == "starter"
    bad = tmp_path / "hosting.yaml"
    bad.write_text("version: 1\nplatform: {}\n")
    with pytest.raises(hosting.SpecError) as info:
        hosting.load(bad)
    fields = {e.path for e in info.value.errors}
    assert {"platform.name", "platform.domain", "platform.public_ipv4"} <= fields
    first = info.value.errors[0]
    assert (first.file, first.line) == (str(bad), 2)


def test_plan_names_are_case_insensitive(tmp_path: Path) -> None:
    text = (REPO / "hosting.yaml").read_text().replace("plan: starter", "plan: Starter")
    (tmp_path / "hosting.yaml").write_text(text)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    assert hosting.load(tmp_path / "hosting.yaml").tenants["acme"].plan == "starter"


def test_init_writes_a_valid_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    first = run_hosting("init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert run_hosting("validate", cwd=tmp_path).returncode == 0
    again = run_hosting("init", cwd=tmp_path)
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert run_hosting("init", "--force", cwd=tmp_path).returncode == 0


def test_unknown_command_is_a_clean_error() -> None:
    result = run_hosting("valdate")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "valdate" in result.stderr
