"""`platform.target: swarm` under pulumi mocks: services, overlays, secrets, placement."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from hosting.errors import SpecError
from hosting.spec import loads
from hosting.stacks.mocked import MockResource, is_secret, reveal, run_mocked
from tests.stacks.conftest import fixed_settings

SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"

SWARM_YAML = """
version: 1
platform:
  name: sw
  domain: apps.localhost
  public_ipv4: 127.0.0.1
  target: swarm
  docker: {host: "tcp://172.20.0.9:2375"}
tenants:
  acme:
    name: Acme
    email: a@example.test
    plan: starter
    started: 2026-01-01
    deployments:
      shop:
        type: web
        image: nginx:alpine
        port: 80
        replicas: 3
        env:
          DATABASE_URL: ${main.url}
          GREETING: hello
      api:
        type: api
        image: hosting-test/api:latest
        port: 8080
        replicas: {min: 2, max: 4, cpu_target: 60}
      main:
        type: database
  globex:
    name: Globex
    email: g@example.test
    plan: pro
    started: 2026-01-01
    deployments:
      portal:
        type: web
        image: nginx:alpine
        port: 80
"""


@pytest.fixture(scope="module")
def graph() -> list[MockResource]:
    spec = loads(SWARM_YAML)
    return run_mocked(spec, fixed_settings(spec))


def services(graph: list[MockResource]) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in graph if r.type == SERVICE}


def test_swarm_declares_services_not_containers(graph: list[MockResource]) -> None:
    assert not [r for r in graph if r.kind == "Container"]
    assert sorted(services(graph)) == [
        "sw_acme_api",
        "sw_acme_main",
        "sw_acme_shop",
        "sw_edge",
        "sw_globex_portal",
    ]


def test_tenant_networks_are_encrypted_overlays(graph: list[MockResource]) -> None:
    nets = {r.inputs["name"]: r.inputs for r in graph if r.kind == "Network"}
    assert sorted(nets) == ["sw_acme", "sw_globex"]
    for net in nets.values():
        assert net["driver"] == "overlay"
        assert "encrypted" in net["options"]


def test_app_service_replicas_limits_hardening_and_rollback(graph: list[MockResource]) -> None:
    shop = services(graph)["sw_acme_shop"]
    assert shop["mode"]["replicated"]["replicas"] == 3
    task = reveal(shop["taskSpec"])
    # the starter plan: 1 CPU, 1024 MB, as limits; its memory reserved, CPU shared
    assert task["resources"]["limits"]["nanoCpus"] == 1_000_000_000
    assert task["resources"]["limits"]["memoryBytes"] == 1024 * 1024 * 1024
    assert task["resources"]["reservation"] == {"memoryBytes": 1024 * 1024 * 1024}
    spec = task["containerSpec"]
    assert spec["readOnly"] is True
    assert spec["capDrops"] == ["ALL"]
    assert spec["init"] is True  # SIGTERM reaches an app run as PID 1 (destroy waits for it)
    assert {m["target"]: m["type"] for m in spec["mounts"]} == {"/tmp": "tmpfs", "/run": "tmpfs"}
    labels = {lab["label"]: lab["value"] for lab in spec["labels"]}
    assert labels == {"hosting.tenant": "acme", "hosting.deployment": "shop", "hosting.type": "web"}
    service_labels = {lab["label"]: lab["value"] for lab in shop["labels"]}
    assert service_labels == labels
    assert spec["healthcheck"]["tests"][0] == "CMD-SHELL"
    update = shop["updateConfig"]
    assert (update["order"], update["failureAction"], update["parallelism"]) == (
        "start-first",
        "rollback",
        1,
    )
    [net] = task["networksAdvanceds"]
    assert net["aliases"] == ["sw_acme_shop"]


def test_autoscaled_service_starts_at_its_minimum(graph: list[MockResource]) -> None:
    assert services(graph)["sw_acme_api"]["mode"]["replicated"]["replicas"] == 2


def test_secret_env_becomes_a_docker_secret_and_a_file_variable(
    graph: list[MockResource],
) -> None:
    shop = services(graph)["sw_acme_shop"]
    # DATABASE_URL holds the password: the task spec is encrypted in state (the SDK wraps
    # the whole input that holds a secret), and a service without secrets is not
    assert is_secret(shop["taskSpec"])
    assert not is_secret(services(graph)["sw_globex_portal"]["taskSpec"])
    spec = reveal(shop["taskSpec"])["containerSpec"]
    env = spec["env"]
    assert env["DATABASE_URL_FILE"] == "/run/secrets/DATABASE_URL"
    assert env["GREETING"] == "hello"
    [mounted] = spec["secrets"]
    assert mounted["fileName"] == "/run/secrets/DATABASE_URL"
    secrets = {r.name: r.inputs for r in graph if r.type == SECRET}
    data = secrets["acme_shop_DATABASE_URL"]["data"]
    assert is_secret(data)
    assert base64.b64decode(reveal(data)).decode() == env["DATABASE_URL"]


def test_database_is_pinned_and_reads_its_password_from_a_secret(
    graph: list[MockResource],
) -> None:
    main = services(graph)["sw_acme_main"]
    task = main["taskSpec"]
    assert task["placement"]["constraints"] == ["node.labels.hosting.db==true"]
    env = reveal(task["containerSpec"]["env"])
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    assert main["updateConfig"]["order"] == "stop-first"
    assert not main["endpointSpec"].get("ports")  # published on no port of any node
    assert main["endpointSpec"]["mode"] == "vip"
    # apps reach it under the docker target's container name, as ${main.host} says
    [net] = task["networksAdvanceds"]
    assert "sw_acme_main_0" in net["aliases"]
    volumes = [m for m in task["containerSpec"]["mounts"] if m["type"] == "volume"]
    assert [(v["source"], v["target"]) for v in volumes] == [
        ("sw_acme_main_data", "/var/lib/postgresql/data")
    ]


def test_no_password_in_any_plain_input(graph: list[MockResource]) -> None:
    spec = loads(SWARM_YAML)
    password = fixed_settings(spec).databases["acme/main"].password

    def plain(value: Any) -> Any:  # every input with secret-wrapped values left out
        if is_secret(value):
            return None
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    for r in graph:
        assert password not in json.dumps(plain(r.inputs)), r.name


def test_edge_publishes_80_and_443_in_host_mode_on_a_manager(graph: list[MockResource]) -> None:
    edge = services(graph)["sw_edge"]
    ports = edge["endpointSpec"]["ports"]
    assert sorted((p["targetPort"], p["publishMode"]) for p in ports) == [
        (80, "host"),
        (443, "host"),
    ]
    assert edge["taskSpec"]["placement"]["constraints"] == ["node.role==manager"]
    assert len(edge["taskSpec"]["networksAdvanceds"]) == 2  # every tenant's overlay


def test_the_edge_is_pinned_to_the_node_of_the_managers_engine_when_known() -> None:
    """apply gives the program the node id of platform.docker.host's engine (where `hosting`
    runs, with the static folders and the admin socket): the edge goes there, not to any
    manager; nothing else is pinned to it."""
    spec = loads(SWARM_YAML)
    settings = replace(fixed_settings(spec), edge_node_id="n0de1d")
    found = services(run_mocked(spec, settings))
    assert found["sw_edge"]["taskSpec"]["placement"]["constraints"] == ["node.id==n0de1d"]
    assert found["sw_acme_main"]["taskSpec"]["placement"]["constraints"] == [
        "node.labels.hosting.db==true"
    ]
    assert "placement" not in found["sw_acme_shop"]["taskSpec"]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ("target: swarm", "platform.target", None),  # the valid baseline
        (
            "target: docker",
            "tenants.acme.deployments.api.replicas",
            "autoscaling (`replicas: {min, max}`) needs `platform.target: swarm`",
        ),
    ],
)
def test_autoscaling_needs_the_swarm_target(change: str, path: str, message: str | None) -> None:
    text = SWARM_YAML.replace("target: swarm", change)
    if message is None:
        loads(text)
        return
    with pytest.raises(SpecError) as err:
        loads(text)
    assert any(message in e.message and e.path == path for e in err.value.errors), err.value


def test_swarm_refuses_what_it_cannot_run_yet() -> None:
    text = SWARM_YAML.replace(
        "      main:\n        type: database\n",
        "      main:\n        type: database\n        pooling: true\n",
    )
    with pytest.raises(SpecError) as err:
        loads(text)
    [problem] = err.value.errors
    assert problem.path == "tenants.acme.deployments.main.pooling"
    assert "platform.target docker only" in problem.message


def test_autoscale_bounds_are_checked() -> None:
    text = SWARM_YAML.replace("{min: 2, max: 4, cpu_target: 60}", "{min: 5, max: 4}")
    with pytest.raises(SpecError) as err:
        loads(text)
    [problem] = err.value.errors
    assert problem.path == "tenants.acme.deployments.api.replicas"
    assert "`min` (5) is more than `max` (4)" in problem.message


def test_networking_follows_platform_swarm() -> None:
    text = SWARM_YAML.replace(
        "  target: swarm\n",
        "  target: swarm\n  swarm: {encrypted_networks: false, endpoint_mode: dnsrr}\n",
    )
    spec = loads(text)
    graph = run_mocked(spec, fixed_settings(spec))
    nets = [r.inputs for r in graph if r.kind == "Network"]
    assert nets and all(not n.get("options") for n in nets)
    assert {s["endpointSpec"]["mode"] for s in services(graph).values()} == {"dnsrr"}


def test_a_build_runs_on_swarm_under_a_tag_of_its_content(tmp_path: Any) -> None:
    """The program builds nothing on a swarm (apply built and loaded the image on the nodes
    first): the service names the image by its context's content, so an edited file is a
    new image the service rolls to, and an unchanged one is the same name."""
    context = tmp_path / "api"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM hosting-test/busybox:latest\n")
    (context / "health").write_text("one\n")
    text = SWARM_YAML.replace(
        "        image: hosting-test/api:latest\n", "        build: {context: ./api}\n"
    )

    def api_image() -> str:
        spec = loads(text, base_dir=tmp_path)
        settings = replace(fixed_settings(spec), base_dir=tmp_path)
        graph = run_mocked(spec, settings)
        assert not [r for r in graph if r.kind == "RemoteImage"]
        return str(reveal(services(graph)["sw_acme_api"]["taskSpec"])["containerSpec"]["image"])

    first = api_image()
    assert first.startswith("hosting-build/sw_acme_api:")
    assert first.split(":")[1] != "latest"
    assert api_image() == first
    (context / "health").write_text("two\n")
    assert api_image() != first
