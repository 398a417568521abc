"""`source:` (issue 17): the fourth way to give a web/API deployment, its `runtime` and the
platform's runtime images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hosting.errors import SpecError
from hosting.spec import load
from tests.conftest import run_hosting

HEAD = """\
version: 1
platform:
  name: demo
  domain: apps.localhost
  public_ipv4: 127.0.0.1
{platform_extra}tenants:
  acme:
    name: Acme Corp
    email: billing@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      shop:
        type: web
{deployment}"""


def write(tmp_path: Path, deployment: str, platform_extra: str = "") -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    path = tmp_path / "hosting.yaml"
    path.write_text(HEAD.format(deployment=deployment, platform_extra=platform_extra))
    return path


def test_source_needs_no_port_and_takes_the_default_runtimes(tmp_path: Path) -> None:
    spec = load(write(tmp_path, "        source: ./app\n"))
    dep = spec.tenants["acme"].deployments["shop"]
    assert dep.source == "./app"
    assert dep.port is None
    assert dep.origin == "source"
    assert spec.platform.runtimes.image("node", None) == "node:20-bookworm-slim"
    assert spec.platform.runtimes.image("python", None) == "python:3.11-slim-bookworm"


def test_versions_written_as_numbers_are_kept_as_written(tmp_path: Path) -> None:
    extra = '  runtimes:\n    python: {3.12: py:12, "3.11": py:11}\n'
    spec = load(write(tmp_path, "        source: ./app\n        runtime: {python: 3.12}\n", extra))
    dep = spec.tenants["acme"].deployments["shop"]
    assert (dep.runtime.language, dep.runtime.version) == ("python", "3.12")
    assert spec.platform.runtimes.image("python", "3.12") == "py:12"
    assert spec.platform.runtimes.image("python", None) == "py:12"  # the first listed


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            "        image: shop:1\n        port: 8080\n        runtime: {node: '20'}\n",
            "`runtime` is for `source`",
        ),
        (
            "        source: ./app\n        runtime: {node: '20', python: '3.11'}\n",
            "give exactly one of `node",
        ),
        ("        source: ./app\n        runtime: {}\n", "give exactly one of `node"),
    ],
)
def test_runtime_refusals(tmp_path: Path, deployment: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load(write(tmp_path, deployment))
    assert message in "\n".join(info.value.lines())


def test_schema_knows_source_and_runtime(tmp_path: Path) -> None:
    schema: dict[str, Any] = yaml.safe_load(run_hosting("schema").stdout)
    data = yaml.safe_load(HEAD.format(deployment="        source: ./app\n", platform_extra=""))
    data["tenants"]["acme"]["started"] = "2026-11-03"
    jsonschema.Draft202012Validator(schema).validate(data)
    data["tenants"]["acme"]["deployments"]["shop"]["runtime"] = {"ruby": "3.3"}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data))
