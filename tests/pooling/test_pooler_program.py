"""The program under Pulumi mocks: a pooled database gets one hardened PgBouncer container on
its tenant's network, publishing nothing, with no secret among its inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hosting.spec import loads
from hosting.stacks.mocked import MockResource, reveal, run_mocked
from hosting.stacks.pooler import pooled_verifier
from tests.stacks.conftest import fixed_settings

CONTAINER = "docker:index/container:Container"
FILE = """version: 1
platform: {name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      main: {type: database, pooling: {mode: session, max_client_conn: 300}}
      plain: {type: database}
      resting: {type: database, pooling: true, stopped: true}
      app: {type: api, image: x:1, port: 80, env: {DATABASE_URL: "${main.url}"}}
"""
PASSWORD = "pw-acme-main-Zq9"  # fixed_settings' password for acme/main


@pytest.fixture(scope="module")
def graph() -> list[MockResource]:
    spec = loads(FILE)
    return run_mocked(spec, fixed_settings(spec, Path("/state")))


def _containers(graph: list[MockResource]) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in graph if r.type == CONTAINER}


def test_only_the_running_pooled_database_gets_a_pooler(graph: list[MockResource]) -> None:
    assert sorted(_containers(graph)) == [
        "acme_app_0",
        "acme_main_0",
        "acme_main_pooler",
        "acme_plain_0",
        "edge",
    ]
    assert any(r.type == "hosting:stacks:Pooler" and r.name == "acme_main" for r in graph)


def test_the_pooler_is_hardened_like_every_container(graph: list[MockResource]) -> None:
    c = _containers(graph)["acme_main_pooler"]
    assert c["name"] == "demo_acme_main_pooler"
    assert c["readOnly"] is True
    assert c["capabilities"] == {"drops": ["ALL"]}
    assert c["securityOpts"] == ["no-new-privileges:true"]
    assert c["restart"] == "unless-stopped"
    assert (c["memory"], c["memorySwap"], c["cpus"]) == (64, 64, "1.0")
    assert {u["name"]: u["hard"] for u in c["ulimits"]} == {"nproc": 512, "nofile": 8192}
    assert c["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=16m"}
    assert c["command"] == ["/usr/sbin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
    assert c["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    labels = {item["label"]: item["value"] for item in c["labels"]}
    assert labels == {
        "hosting.tenant": "acme",
        "hosting.deployment": "main",
        "hosting.type": "pooler",
    }


def test_the_pooler_is_on_its_tenants_network_only_and_publishes_nothing(
    graph: list[MockResource],
) -> None:
    c = _containers(graph)["acme_main_pooler"]
    assert [n["name"] for n in c["networksAdvanced"]] == ["demo_acme"]
    assert c["networksAdvanced"][0]["aliases"] == ["demo_acme_main_pooler"]
    assert "ports" not in c


def test_config_is_bind_mounted_read_only_from_the_state_dir(graph: list[MockResource]) -> None:
    mounts = _containers(graph)["acme_main_pooler"]["mounts"]
    assert sorted((m["source"], m["target"], m["type"], m["readOnly"]) for m in mounts) == [
        (f"/state/pooler/acme_main/{f}", f"/etc/pgbouncer/{f}", "bind", True)
        for f in ("hba.txt", "pgbouncer.ini", "userlist.txt")
    ]


def test_no_input_of_any_resource_holds_the_password_or_verifier_of_the_pooler(
    graph: list[MockResource],
) -> None:
    verifier = pooled_verifier("acme/main", PASSWORD)
    pooler = json.dumps(reveal(_containers(graph)["acme_main_pooler"]))
    assert PASSWORD not in pooler
    everything = json.dumps([reveal(r.inputs) for r in graph])
    assert verifier not in everything and verifier.rsplit("$", 1)[1] not in everything


def test_the_app_reaches_the_database_through_the_pooler(graph: list[MockResource]) -> None:
    envs = reveal(_containers(graph)["acme_app_0"]["envs"])
    url = f"postgresql://u_acme_main:{PASSWORD}@demo_acme_main_pooler:6432/db_main"
    assert f"DATABASE_URL={url}" in envs
