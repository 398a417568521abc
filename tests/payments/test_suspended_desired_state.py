"""What a suspension asks of apply (issue 15), as desired state: the spec → stack mapping
under pulumi mocks and the edge's Caddy config (golden), and that config on the host's real
Caddy answering 402. The real-edge test over a real apply is tests/engine/test_suspension.py
(run by the lead with the engine tests)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import hosting
from hosting.edge.caddy import build_config, push_config
from hosting.spec import names
from hosting.spec.models import Spec
from hosting.stacks.desired import desired_containers
from hosting.stacks.mocked import MockResource, run_mocked
from tests.conftest import REPO, golden
from tests.stacks.conftest import fixed_settings

GOLDEN = Path(__file__).parent / "golden"
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return hosting.load(REPO / "hosting.yaml")


def container_names(graph: list[MockResource]) -> set[str]:
    return {r.name for r in graph if r.type == CONTAINER}


def test_suspended_tenant_runs_no_web_or_api_and_keeps_its_database(spec: Spec) -> None:
    running = container_names(run_mocked(spec, fixed_settings(spec)))
    settings = replace(fixed_settings(spec), suspended=frozenset({"acme"}))
    graph = run_mocked(spec, settings)
    suspended = container_names(graph)
    # acme: shop (2 replicas) and api stop; its database keeps running with its volume.
    assert {"acme_shop_0", "acme_shop_1", "acme_api_0"} <= running
    assert running - suspended == {"acme_shop_0", "acme_shop_1", "acme_api_0"}
    assert "acme_main_0" in suspended
    assert any(r.type == VOLUME and r.name == "acme_main_data" for r in graph)
    # Nobody else is touched: globex and umbrella run as before.
    assert {"globex_portal_0", "umbrella_records_0", "umbrella_records_2"} <= suspended


def test_desired_containers_agree(spec: Spec) -> None:
    settings = replace(fixed_settings(spec), suspended=frozenset({"acme"}))
    desired = desired_containers(spec, settings)
    assert desired.apps[("acme", "shop")] == [] and desired.apps[("acme", "api")] == []
    assert desired.databases[("acme", "main")] is not None
    assert len(desired.apps[("umbrella", "records")]) == 3


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config["apps"]["http"]["servers"]["edge"]["routes"])


def handler_for(config: dict[str, Any], host: str) -> dict[str, Any]:
    [route] = [r for r in routes(config) if host in r.get("match", [{"host": []}])[0]["host"]]
    return dict(route["handle"][0])


def test_edge_answers_a_suspended_tenants_hosts_with_402(spec: Spec) -> None:
    verified = frozenset({"shop.acme.test", "www.shop.acme.test"})
    before = build_config(spec, verified_domains=verified)
    config = build_config(spec, verified_domains=verified, suspended=frozenset({"acme"}))
    host = {d: names.hostname("acme", d, k, "apps.localhost") for d, k in ACME_SITES}
    refused = [
        set(r["match"][0]["host"])
        for r in routes(config)
        if r["handle"][0].get("status_code") == 402
    ]
    # shop (with its verified custom domain), api and the static docs: every acme site.
    assert refused == [{host["shop"], "shop.acme.test"}, {host["api"]}, {host["docs"]}]
    page = handler_for(config, "shop.acme.test")
    assert page["handler"] == "static_response" and "Payment required" in page["body"]
    assert page["headers"]["Cache-Control"] == ["no-store"]
    assert handler_for(config, "www.shop.acme.test")["status_code"] == 301  # still to the apex
    # Every other route is exactly as without the suspension.
    acme_hosts = {h for hosts in refused for h in hosts} | {"www.shop.acme.test"}
    others = [r for r in routes(config) if not acme_hosts & set(_hosts(r))]
    assert others == [r for r in routes(before) if not acme_hosts & set(_hosts(r))]
    assert len(others) == 3  # globex portal, umbrella records, the catch-all 404


ACME_SITES = (("shop", "web"), ("api", "api"), ("docs", "web"))


def _hosts(route: dict[str, Any]) -> list[str]:
    return [h for m in route.get("match", []) for h in m["host"]]


def test_golden_edge_config_with_a_suspension(spec: Spec) -> None:
    config = build_config(spec, suspended=frozenset({"acme"}))
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    assert config == json.loads(golden(GOLDEN / "edge_suspended.json", text))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_real_caddy_answers_402_then_200_after_reload(
    spec: Spec, caddy_binary: str, tmp_path: Path
) -> None:
    """The host's Caddy with the generated config: a suspended static site answers 402 with
    the page; the same config without the suspension, loaded gracefully, serves it again."""
    sock = tmp_path / "admin.sock"
    static = tmp_path / "static"
    (static / "acme" / "docs").mkdir(parents=True)
    (static / "acme" / "docs" / "index.html").write_text("docs-here")
    port = _free_port()

    def config(suspended: frozenset[str]) -> dict[str, Any]:
        return build_config(
            spec,
            admin_listen=f"unix/{sock}",
            log_dir=str(tmp_path),
            static_root=str(static),
            http_port=port,
            tls=False,
            suspended=suspended,
        )

    [docs] = [
        r["match"][0]["host"][0]
        for r in routes(config(frozenset()))
        if r["handle"][0]["handler"] == "file_server"
    ]
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps({"admin": {"listen": f"unix/{sock}"}}))
    proc = subprocess.Popen(
        [caddy_binary, "run", "--config", str(boot)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
    )

    def get() -> tuple[int, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": docs})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        push_config(f"unix://{sock}", config(frozenset({"acme"})))
        code, body = get()
        assert code == 402 and "Payment required" in body
        push_config(f"unix://{sock}", config(frozenset()))
        assert get() == (200, "docs-here")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
