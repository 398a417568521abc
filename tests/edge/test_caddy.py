"""The generated Caddy config: routes, redirects, issuers, logs; accepted by the real Caddy."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import hosting
from hosting.edge.caddy import build_config, edge_routes, get_config, push_config
from hosting.errors import ProviderError
from hosting.spec import loads, names
from hosting.spec.models import Spec
from tests.conftest import golden

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
SHOP = "web-"  # generated subdomains start with their kind


@pytest.fixture(scope="module")
def spec() -> Spec:
    return hosting.load(REPO / "hosting.yaml")


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config["apps"]["http"]["servers"]["edge"]["routes"])


def hosts_of(config: dict[str, Any]) -> set[str]:
    return {h for r in routes(config) for m in r.get("match", []) for h in m["host"]}


def route_for(config: dict[str, Any], host: str) -> dict[str, Any]:
    [route] = [r for r in routes(config) if host in r.get("match", [{"host": []}])[0]["host"]]
    return route


def test_unverified_custom_domains_get_no_route(spec: Spec) -> None:
    hosts = hosts_of(build_config(spec))
    assert not any(h.endswith(".test") for h in hosts)
    # shop, api, docs (acme), portal (globex), records (umbrella); blog is stopped
    assert len(hosts) == 5 and all(h.endswith(".apps.localhost") for h in hosts)


def test_verified_domains_route_and_www_redirects_to_apex(spec: Spec) -> None:
    config = build_config(
        spec, verified_domains=frozenset({"shop.acme.test", "www.shop.acme.test"})
    )
    shop = route_for(config, "shop.acme.test")
    assert shop["handle"][0]["handler"] == "reverse_proxy"
    redirect = route_for(config, "www.shop.acme.test")["handle"][0]
    assert redirect["status_code"] == 301
    assert redirect["headers"]["Location"] == [
        "{http.request.scheme}://shop.acme.test{http.request.uri}"
    ]
    assert "records.umbrella.test" not in hosts_of(config)


def _site_with_domains(*domains: str) -> Spec:
    return loads(
        f"""
version: 1
platform: {{name: p, domain: apps.test, public_ipv4: 127.0.0.1}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      site: {{type: web, image: x, port: 80, domains: [{", ".join(domains)}]}}
""",
        base_dir=REPO,
    )


def handlers_by_host(config: dict[str, Any]) -> dict[str, str]:
    return {
        h: r["handle"][0]["handler"]
        for r in routes(config)
        for m in r.get("match", [])
        for h in m["host"]
    }


@pytest.mark.parametrize(
    ("listed", "verified", "expected"),
    [
        # www and its apex, both verified: www redirects to the apex
        (("x.test", "www.x.test"), {"x.test", "www.x.test"},
         {"x.test": "reverse_proxy", "www.x.test": "static_response"}),
        # the apex listed but not verified: it gets no route, so www cannot send anyone there
        (("x.test", "www.x.test"), {"www.x.test"}, {"www.x.test": "reverse_proxy"}),
        # www without its apex in the file: www is the site itself
        (("www.x.test",), {"www.x.test"}, {"www.x.test": "reverse_proxy"}),
        # the apex verified, but for another deployment's file entry: not this site's apex
        (("www.x.test",), {"www.x.test", "x.test"}, {"www.x.test": "reverse_proxy"}),
    ],
)  # fmt: skip
def test_www_redirects_only_to_an_apex_this_site_serves(
    listed: tuple[str, ...], verified: set[str], expected: dict[str, str]
) -> None:
    config = build_config(_site_with_domains(*listed), verified_domains=frozenset(verified))
    custom = {h: kind for h, kind in handlers_by_host(config).items() if h.endswith("x.test")}
    assert custom == expected


def test_replicas_are_load_balanced_with_health_checks(spec: Spec) -> None:
    proxies = [
        r["handle"][0]
        for r in routes(build_config(spec))
        if r["handle"][0]["handler"] == "reverse_proxy"
    ]
    records = [p for p in proxies if len(p["upstreams"]) == 3]
    assert [u["dial"] for u in records[0]["upstreams"]] == [
        f"demo_umbrella_records_{i}:8080" for i in range(3)
    ]
    assert records[0]["load_balancing"]["try_duration"] == "30s"
    assert records[0]["health_checks"]["active"]["uri"] == "/"
    shop = next(p for p in proxies if p["upstreams"][0]["dial"].startswith("demo_acme_shop_"))
    assert shop["health_checks"]["active"]["uri"] == "/healthz"


def test_static_site_is_served_by_the_file_server(spec: Spec) -> None:
    handlers = [r["handle"][0] for r in routes(build_config(spec))]
    assert {"handler": "file_server", "root": "/srv/static/acme/docs"} in handlers


def test_admin_listens_on_a_unix_socket_only(spec: Spec) -> None:
    assert build_config(spec)["admin"]["listen"].startswith("unix/")


def test_access_log_is_json_to_a_file(spec: Spec) -> None:
    logs = build_config(spec)["logging"]["logs"]
    assert logs["access"]["encoder"]["format"] == "json"
    assert logs["access"]["writer"]["output"] == "file"
    assert logs["access"]["include"] == ["http.log.access.edge"]


def _spec_with_acme(acme: str) -> Spec:
    return loads(
        f"""
version: 1
platform:
  name: p
  domain: apps.test
  public_ipv4: 127.0.0.1
  {acme}
tenants: {{}}
""",
        base_dir=REPO,
    )


@pytest.mark.parametrize(
    ("acme", "issuer"),
    [
        ("", {"module": "internal"}),
        ("acme: {ca: internal}", {"module": "internal"}),
        (
            "acme: {email: ops@p.test}",
            {
                "module": "acme",
                "ca": "https://acme-v02.api.letsencrypt.org/directory",
                "email": "ops@p.test",
            },
        ),
        (
            "acme: {ca: letsencrypt-staging}",
            {"module": "acme", "ca": "https://acme-staging-v02.api.letsencrypt.org/directory"},
        ),
        (
            "acme: {ca: 'https://127.0.0.1:14000/dir', ca_root: hosting.yaml}",
            {
                "module": "acme",
                "ca": "https://127.0.0.1:14000/dir",
                "trusted_roots_pem_files": ["hosting.yaml"],
            },
        ),
    ],
)
def test_issuer_follows_platform_acme(acme: str, issuer: dict[str, Any]) -> None:
    config = build_config(_spec_with_acme(acme))
    assert config["apps"]["tls"]["automation"]["policies"] == [{"issuers": [issuer]}]


def test_the_ca_root_is_read_where_the_edge_mounts_it() -> None:
    spec = _spec_with_acme("acme: {ca: 'https://127.0.0.1:14000/dir', ca_root: hosting.yaml}")
    config = build_config(spec, ca_root_path="/etc/hosting-ca/root.pem")
    [policy] = config["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"][0]["trusted_roots_pem_files"] == ["/etc/hosting-ca/root.pem"]


def test_each_running_site_gets_one_route_in_file_order(spec: Spec) -> None:
    """hosting.yaml by hand: databases and the stopped blog get none; docs is static."""
    got = [
        (r.tenant, r.deployment, r.kind, r.upstreams == (), r.static_root)
        for r in edge_routes(spec)
    ]
    assert got == [
        ("acme", "shop", "web", False, None),
        ("acme", "api", "api", False, None),
        ("acme", "docs", "web", True, "/srv/static/acme/docs"),
        ("globex", "portal", "web", False, None),
        ("umbrella", "records", "api", False, None),
    ]


def test_given_upstreams_and_static_root_replace_the_defaults(spec: Spec) -> None:
    """What the loopback tests and the driver pass: dial addresses and where sites live."""
    config = build_config(
        spec, upstreams={("acme", "shop"): ["127.0.0.1:9001"]}, static_root="/sites"
    )
    handlers = [r["handle"][0] for r in routes(config)]
    dials = [
        [u["dial"] for u in h["upstreams"]] for h in handlers if h["handler"] == "reverse_proxy"
    ]
    assert ["127.0.0.1:9001"] in dials
    assert ["demo_acme_api_0:3000"] in dials  # the others keep their containers
    assert {"handler": "file_server", "root": "/sites/acme/docs"} in handlers


def test_every_route_for_a_host_is_terminal(spec: Spec) -> None:
    """Past a matched host (redirects included) no later route may run: the last is a 404."""
    config = build_config(
        spec, verified_domains=frozenset({"shop.acme.test", "www.shop.acme.test"})
    )
    matched = [r for r in routes(config) if "match" in r]
    assert len(matched) == 6  # one per running site (shop with its domain), the www redirect
    assert all(r["terminal"] is True for r in matched)
    assert "match" not in routes(config)[-1]


def test_plain_http_mode_disables_automatic_https(spec: Spec) -> None:
    config = build_config(spec, tls=False, http_port=8081)
    server = config["apps"]["http"]["servers"]["edge"]
    assert server["listen"] == [":8081"] and server["automatic_https"] == {"disable": True}
    assert "tls" not in config["apps"]


def test_golden_config(spec: Spec) -> None:
    actual = build_config(spec, verified_domains=frozenset({"shop.acme.test"}))
    text = json.dumps(actual, indent=1, sort_keys=True) + "\n"
    assert actual == json.loads(golden(GOLDEN / "example.json", text))


def test_bad_admin_address_is_a_clear_error() -> None:
    with pytest.raises(ProviderError, match="not a Caddy admin address"):
        push_config("ftp://x", {})


@pytest.mark.e2e
def test_real_caddy_loads_the_config_and_routes(
    spec: Spec, caddy_binary: str, tmp_path: Path
) -> None:
    """The host's caddy on a loopback port, loaded through the admin socket."""
    sock = tmp_path / "admin.sock"
    static = tmp_path / "static"
    (static / "acme" / "docs").mkdir(parents=True)
    (static / "acme" / "docs" / "index.html").write_text("docs-here")
    config = build_config(
        spec,
        verified_domains=frozenset({"shop.acme.test", "www.shop.acme.test"}),
        admin_listen=f"unix/{sock}",
        log_dir=str(tmp_path),
        static_root=str(static),
        http_port=18931,
        tls=False,
    )
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps({"admin": {"listen": f"unix/{sock}"}}))
    proc = subprocess.Popen(
        [caddy_binary, "run", "--config", str(boot)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        push_config(f"unix://{sock}", config)
        running = get_config(f"unix://{sock}")
        assert hosts_of(running) == hosts_of(config)
        [docs] = [
            r["match"][0]["host"][0]
            for r in routes(config)
            if r["handle"][0]["handler"] == "file_server"
        ]
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Host: x.y.test",
                "http://127.0.0.1:18931/",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout == "404"
        out = subprocess.run(
            ["curl", "-s", "-H", f"Host: {docs}", "http://127.0.0.1:18931/"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout == "docs-here"
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "-H",
                "Host: www.shop.acme.test",
                "http://127.0.0.1:18931/a/b?c=1",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout == "301 http://shop.acme.test/a/b?c=1"
        lines = [json.loads(x) for x in (tmp_path / "access.log").read_text().splitlines()]
        entry = next(e for e in lines if e["request"]["host"] == docs)
        assert entry["status"] == 200 and entry["size"] == len("docs-here")
        # bytes_read joins the log in Caddy 2.7; the metering agent treats it as optional
        assert "duration" in entry
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_source_build_without_a_port_is_dialled_on_the_port_it_is_given(
    tmp_path: Path,
) -> None:
    """A source deployment may leave out `port`: its app gets PORT=8080 (SOURCE_PORT), and
    the edge must dial that, not `None` (Caddy then answered 502 for every request)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"main": "server.js"}')
    spec = loads(
        """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      node: {type: web, source: ./app, replicas: 2}
      given: {type: web, source: ./app, port: 3000}
""",
        base_dir=tmp_path,
    )
    dials = {r.deployment: r.upstreams for r in edge_routes(spec)}
    assert dials == {
        "node": ("p_acme_node_0:8080", "p_acme_node_1:8080"),
        "given": ("p_acme_given_0:3000",),
    }


def test_a_resolved_upstream_balances_over_every_address_of_its_name(
    spec: Spec, caddy_binary: str, tmp_path: Path
) -> None:
    # A swarm service in dnsrr mode: its name has one A record per task.
    shop = ("acme", "shop")
    config = build_config(
        spec, upstreams={shop: ["demo_acme_shop:8080"]}, resolve=frozenset({shop})
    )
    proxy = next(
        r["handle"][0]
        for r in routes(config)
        if r["handle"][0].get("dynamic_upstreams", {}).get("name") == "demo_acme_shop"
    )
    assert proxy["dynamic_upstreams"] == {
        "source": "a",
        "name": "demo_acme_shop",
        "port": "8080",
        "refresh": "2s",
    }
    # the whole handler, by hand: balanced like fixed upstreams, passive health checks only
    assert proxy == {
        "handler": "reverse_proxy",
        "dynamic_upstreams": {
            "source": "a",
            "name": "demo_acme_shop",
            "port": "8080",
            "refresh": "2s",
        },
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": "30s",
            "try_interval": "250ms",
        },
        "health_checks": {"passive": {"fail_duration": "10s", "max_fails": 1}},
    }
    # the other deployments keep their fixed upstreams
    records = [p for p in (r["handle"][0] for r in routes(config)) if p.get("upstreams")]
    assert len(records) == 3
    # Debian's Caddy knows the module and accepts the whole config
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    out = subprocess.run(
        [caddy_binary, "validate", "--config", str(path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_suspended_tenants_hosts_answer_402_and_keep_their_routes(spec: Spec) -> None:
    config = build_config(spec, suspended=frozenset({"acme"}))
    by_host = {
        h: r["handle"] for r in routes(config) for m in r.get("match", []) for h in m["host"]
    }
    acme = [h for h in by_host if h.startswith("web-") or h.startswith("api-")]
    shop = names.hostname("acme", "shop", "web", spec.platform.domain)
    portal = names.hostname("globex", "portal", "web", spec.platform.domain)
    assert shop in acme and portal in by_host
    [handler] = by_host[shop]
    assert (handler["handler"], handler["status_code"]) == ("static_response", 402)
    assert handler["headers"]["Cache-Control"] == ["no-store"]
    assert by_host[portal][0]["handler"] == "reverse_proxy"  # another tenant: served


def test_a_source_built_as_a_static_site_is_served_from_its_files(spec: Spec) -> None:
    config = build_config(spec, static_sources=frozenset({("acme", "api")}))
    api = names.hostname("acme", "api", "api", spec.platform.domain)
    [handler] = route_for(config, api)["handle"]
    assert handler == {"handler": "file_server", "root": "/srv/static/acme/api"}
