"""The product's `deployments` table, kept by the health job on real containers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hosting.metering.engine import Engine
from hosting.metering.health import Probe, health_cycle
from hosting.spec import load, names
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, write_spec

pytestmark = pytest.mark.docker
IMAGE = "hosting-test/busybox:latest"


def _always_healthy(edge: str, host: str, path: str, timeout: float) -> Probe:
    return Probe("healthy", "probe stub: the edge is not under test here", 200, 1.0)


def test_deployments_table_follows_the_file_and_the_containers(
    docker_engine: str, tmp_path: Path
) -> None:
    tenant = unique()
    (tmp_path / "public").mkdir()
    deployments = {
        "web": {"type": "web", "image": IMAGE, "port": 8080, "env": {"MODE": "live"},
                "secrets": {"TOKEN": {"env": "WEB_TOKEN"}}, "domains": ["shop.example.test"]},
        "crashed": {"type": "api", "image": IMAGE, "port": 8080},
        "later": {"type": "api", "image": IMAGE, "port": 8080},
        "paused": {"type": "web", "image": IMAGE, "port": 8080, "stopped": True},
        "docs": {"type": "web", "static": "./public"},
        "db": {"type": "database"},
    }  # fmt: skip
    spec = load(write_spec(tmp_path, {tenant: deployments}))
    store = tmp_path / "s.duckdb"
    web, crashed = f"{tenant}_web", f"{tenant}_crashed"
    try:
        web_id = run_labelled(web, tenant, "web", "web", IMAGE)
        run_labelled(crashed, tenant, "crashed", "api", IMAGE, "sh", "-c", "exit 3")
        docker("wait", crashed)
        health_cycle(store, Engine(), spec, probe=_always_healthy)
        got = {
            r[0]: r[1:]
            for r in rows(
                store,
                "SELECT deployment, deployment_type, status, container_id, subdomain,"
                " custom_domain, port, health_status, config FROM deployments WHERE tenant = ?",
                [tenant],
            )
        }
        assert set(got) == set(deployments)
        kind, status, cid, subdomain, domain, port, health, config = got["web"]
        assert (kind, status, cid, domain, port, health) == (
            "web", "running", web_id, "shop.example.test", 8080, "healthy",
        )  # fmt: skip
        assert subdomain == names.hostname(tenant, "web", "web", "apps.localhost")
        saved = json.loads(config)
        assert saved["env"] == {"MODE": "live"} and saved["secrets"] == ["TOKEN"]
        assert got["crashed"][1] == "failed"
        assert got["later"][1] == "pending"
        assert got["paused"][1] == "stopped"
        assert got["docs"][1] == "pending"  # served by the edge, and no edge runs here
        assert got["db"][1] == "pending" and got["db"][5] == 5432

        # A deployment removed from the file leaves the table.
        del deployments["later"]
        spec = load(write_spec(tmp_path, {tenant: deployments}))
        health_cycle(store, Engine(), spec, probe=_always_healthy)
        left = rows(store, "SELECT deployment FROM deployments WHERE tenant = ?", [tenant])
        assert "later" not in {r[0] for r in left}
    finally:
        remove([web, crashed])
