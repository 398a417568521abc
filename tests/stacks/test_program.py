"""The program under pulumi mocks: which resources, with which arguments."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hosting.spec import loads
from hosting.spec.models import Spec
from hosting.stacks.mocked import MockResource, is_secret, masked, reveal, run_mocked
from tests.conftest import golden
from tests.stacks.conftest import REPO, fixed_settings

GOLDEN = Path(__file__).parent / "golden"
CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"


@pytest.fixture(scope="module")
def graph(example_spec: Spec) -> list[MockResource]:
    return run_mocked(example_spec, fixed_settings(example_spec))


def containers(graph: list[MockResource]) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in graph if r.type == CONTAINER}


def env_of(inputs: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in reveal(inputs["envs"]))


def test_example_declares_each_kind(graph: list[MockResource]) -> None:
    names = {(r.type, r.name) for r in graph}
    # hand-counted from hosting.yaml: shop ×2, api, main, portal, orders, records ×3, ledger, edge
    assert sorted(containers(graph)) == sorted(
        [
            "acme_shop_0",
            "acme_shop_1",
            "acme_api_0",
            "acme_main_0",
            "globex_portal_0",
            "globex_orders_0",
            "umbrella_records_0",
            "umbrella_records_1",
            "umbrella_records_2",
            "umbrella_ledger_0",
            "edge",
        ]
    )
    assert {n for t, n in names if t == NETWORK} == {
        "acme_net",
        "globex_net",
        "initech_net",
        "umbrella_net",
    }
    assert {n for t, n in names if t == VOLUME} == {
        "acme_main_data",
        "globex_orders_data",
        "umbrella_ledger_data",
        "edge_data",
        "edge_config",
    }
    for component in ("App", "Database", "Edge", "TenantNetwork"):
        assert any(t == f"hosting:stacks:{component}" for t, _ in names), component


def test_stopped_deployment_runs_nothing(graph: list[MockResource]) -> None:
    assert not any(n.startswith("initech_blog_") and n[-1].isdigit() for n in containers(graph))
    # its network stays: stopped keeps config, runs nothing
    assert any(r.name == "initech_net" for r in graph)


def test_every_container_is_hardened(graph: list[MockResource]) -> None:
    for name, c in containers(graph).items():
        assert c["readOnly"] is True, name
        assert c["capabilities"]["drops"] == ["ALL"], name
        assert "no-new-privileges:true" in c["securityOpts"], name
        nproc = [u for u in c["ulimits"] if u["name"] == "nproc"]
        assert nproc and nproc[0]["hard"] == 512, name
        assert c["restart"] == "unless-stopped", name
        assert c["logDriver"] == "json-file" and c["logOpts"]["max-size"] == "10m", name
        assert c["memory"] == c["memorySwap"] > 0, name
        assert "/tmp" in c["tmpfs"], name
        labels = {item["label"]: item["value"] for item in c["labels"]}
        assert set(labels) == {"hosting.tenant", "hosting.deployment", "hosting.type"}, name
        assert c.get("privileged") in (None, False), name
        if name != "edge":
            assert "healthcheck" in c, name


def test_capabilities_added_only_where_the_image_needs_them(graph: list[MockResource]) -> None:
    adds = {n: c["capabilities"].get("adds", []) for n, c in containers(graph).items()}
    # Docker's own spelling (CAP_X), which the provider reads back: no perpetual diff
    assert adds["edge"] == ["CAP_NET_BIND_SERVICE"]
    assert adds["acme_shop_0"] == [] and adds["umbrella_records_2"] == []
    assert set(adds["acme_main_0"]) == {
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_SETGID",
        "CAP_SETUID",
    }


def test_limits_follow_each_tenants_plan(graph: list[MockResource]) -> None:
    c = containers(graph)
    # starter: 1 core / 1024 MB; team (file): 1.5 / 2048; enterprise: the tenant's own 4 / 8192
    # (cpus spelled as the provider reads them back)
    assert (c["acme_shop_0"]["cpus"], c["acme_shop_0"]["memory"]) == ("1.0", 1024)
    assert (c["acme_main_0"]["cpus"], c["acme_main_0"]["memory"]) == ("1.0", 1024)
    assert (c["globex_portal_0"]["cpus"], c["globex_portal_0"]["memory"]) == ("1.5", 2048)
    assert (c["umbrella_records_1"]["cpus"], c["umbrella_records_1"]["memory"]) == ("4.0", 8192)


def test_free_plan_limits() -> None:
    spec = loads(
        """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  solo:
    name: Solo
    email: a@b.test
    plan: free
    started: 2026-01-01
    deployments:
      site: {type: web, image: x:1, port: 80}
"""
    )
    c = containers(run_mocked(spec, fixed_settings(spec)))
    assert (c["solo_site_0"]["cpus"], c["solo_site_0"]["memory"]) == ("0.5", 512)


def test_tenants_share_no_network(graph: list[MockResource]) -> None:
    for name, c in containers(graph).items():
        nets = [n["name"] for n in c["networksAdvanced"]]
        if name == "edge":
            assert sorted(nets) == ["demo_acme", "demo_globex", "demo_initech", "demo_umbrella"]
        else:
            tenant = name.split("_")[0]
            assert nets == [f"demo_{tenant}"], name


def test_only_edge_and_databases_publish_ports(graph: list[MockResource]) -> None:
    published = {n: c["ports"] for n, c in containers(graph).items() if c.get("ports")}
    assert sorted(published) == ["acme_main_0", "edge", "globex_orders_0", "umbrella_ledger_0"]
    assert sorted((p["internal"], p["external"]) for p in published["edge"]) == [
        (80, 80),
        (443, 443),
    ]
    db_ports = []
    for name in ("acme_main_0", "globex_orders_0", "umbrella_ledger_0"):
        [port] = published[name]
        assert port["ip"] == "127.0.0.1" and port["internal"] == 5432
        db_ports.append(port["external"])
    assert len(set(db_ports)) == 3


def test_replicas_each_get_a_container_and_alias(graph: list[MockResource]) -> None:
    c = containers(graph)
    aliases = [c[f"umbrella_records_{i}"]["networksAdvanced"][0]["aliases"] for i in range(3)]
    assert aliases == [[f"demo_umbrella_records_{i}"] for i in range(3)]


def test_secrets_are_marked_secret(graph: list[MockResource]) -> None:
    c = containers(graph)
    for name in ("acme_shop_0", "acme_api_0", "acme_main_0", "umbrella_records_0"):
        assert is_secret(c[name]["envs"]), name
    # a deployment without secrets or password references stays readable in previews
    assert not is_secret(c["globex_portal_0"]["envs"])
    dumped = json.dumps([masked(r.inputs) for r in graph])
    assert "pw-" not in dumped and "secret-value-" not in dumped


def test_env_references_resolve_within_the_tenant(graph: list[MockResource]) -> None:
    c = containers(graph)
    api = env_of(c["acme_api_0"])
    assert api["DATABASE_URL"] == (
        "postgresql://u_acme_main:pw-acme-main-Zq9@demo_acme_main_0:5432/db_main"
    )
    records = env_of(c["umbrella_records_0"])
    assert records["DB_HOST"] == "demo_umbrella_ledger_0"
    assert records["DB_PORT"] == "5432"
    assert records["DB_PASSWORD"] == "pw-umbrella-ledger-Zq9"
    assert records["PAYMENTS_TOKEN"] == "secret-value-umbrella-records-PAYMENTS_TOKEN"
    shop = env_of(c["acme_shop_0"])
    assert shop["API_URL"].startswith("https://api-") and shop["API_URL"].endswith(
        ".apps.localhost"
    )


def test_database_gets_generated_credentials_and_named_db(graph: list[MockResource]) -> None:
    env = env_of(containers(graph)["globex_orders_0"])
    assert env["POSTGRES_DB"] == "db_orders"
    assert env["POSTGRES_USER"] == "u_globex_orders"
    assert env["POSTGRES_PASSWORD"] == "pw-globex-orders-Zq9"


def test_containers_pinned_to_image_id(graph: list[MockResource]) -> None:
    c = containers(graph)
    # the mock's image id follows the image name; a digest reference would contain "@"
    assert c["acme_shop_0"]["image"] == "sha256:hosting-demo/web:latest"
    assert c["acme_api_0"]["image"] == "sha256:hosting-build/demo_acme_api:latest"


def test_build_keeps_its_log(graph: list[MockResource]) -> None:
    [image] = [r for r in graph if r.name == "acme_api_image"]
    build = image.inputs["build"]
    assert build["context"] == str(REPO / "examples/services/api")
    assert build["buildLogFile"] == "/state/logs/build/acme_api.log"


def test_static_site_is_bound_into_the_edge(graph: list[MockResource]) -> None:
    mounts = containers(graph)["edge"]["mounts"]
    binds = {m["target"]: m for m in mounts if m["type"] == "bind"}
    docs = binds["/srv/static/acme/docs"]
    assert docs["source"] == str(REPO / "examples/public") and docs["readOnly"] is True
    assert "/srv/static/initech/blog" not in binds  # an image site, and stopped
    assert binds["/run/caddy-admin"]["source"] == "/state/edge/admin"


def test_two_runs_declare_the_same_graph(example_spec: Spec) -> None:
    settings = fixed_settings(example_spec)
    first = [(r.type, r.name, masked(r.inputs)) for r in run_mocked(example_spec, settings)]
    second = [(r.type, r.name, masked(r.inputs)) for r in run_mocked(example_spec, settings)]
    assert sorted(first, key=repr) == sorted(second, key=repr)


def _normalized(graph: list[MockResource]) -> list[dict[str, Any]]:
    out = []
    for r in sorted(graph, key=lambda r: (r.type, r.name)):
        text = json.dumps(masked(r.inputs), sort_keys=True).replace(str(REPO), "<repo>")
        out.append({"type": r.type, "name": r.name, "inputs": json.loads(text)})
    return out


def test_golden_resource_graph(graph: list[MockResource]) -> None:
    """The whole resource graph of hosting.yaml, reviewed by hand when it changes.

    Regenerate with UPDATE_GOLDEN=1 and review the diff before committing.
    """
    actual = _normalized(graph)
    text = json.dumps(actual, indent=1, sort_keys=True) + "\n"
    assert actual == json.loads(golden(GOLDEN / "example.json", text))


def test_stopped_database_keeps_its_volume_and_runs_nothing() -> None:
    spec = loads(
        """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  solo:
    name: Solo
    email: a@b.test
    plan: starter
    started: 2026-01-01
    deployments:
      db: {type: database, stopped: true}
"""
    )
    graph = run_mocked(spec, fixed_settings(spec))
    assert "solo_db_0" not in containers(graph)
    assert any(r.type == VOLUME and r.name == "solo_db_data" for r in graph)


def test_database_volumes_bind_their_tenants_filesystem_and_edge_volumes_stay_plain(
    graph: list[MockResource],
) -> None:
    """A database's volume binds a directory in its tenant's filesystem of the plan's storage
    (hosting.provider.volume_quota); the edge's certificates stay on plain named volumes."""
    volumes = {r.name: r.inputs for r in graph if r.type == VOLUME}
    assert volumes["acme_main_data"]["driver"] == "local"
    assert volumes["acme_main_data"]["driverOpts"] == {
        "type": "none", "o": "bind", "device": "/state/volumes/acme/main",
    }  # fmt: skip
    assert "driverOpts" not in volumes["edge_data"]


def test_without_a_volume_root_database_volumes_are_plain(example_spec: Spec) -> None:
    """A remote engine, or apply without root: nothing to bind, as before quotas."""
    settings = replace(fixed_settings(example_spec), volume_root=None)
    volumes = [r for r in run_mocked(example_spec, settings) if r.type == VOLUME]
    assert volumes and all("driverOpts" not in r.inputs for r in volumes)
    db = next(r for r in volumes if r.name == "acme_main_data")
    assert db.inputs["name"] == "demo_acme_main_data"
