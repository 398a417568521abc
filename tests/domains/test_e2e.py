"""End to end on loopback: DNS verification decides which domains reach Caddy; Caddy gets
certificates from Pebble for those only, serves the deployment over HTTPS, redirects www to
the apex; config changes under load drop no request."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hosting.domains import certificate_status, verified_domains
from hosting.edge.caddy import build_config
from hosting.spec import Spec, loads, names
from tests.conftest import run_hosting
from tests.domains.e2e_fixtures import AcmeStack, SniHTTPSConnection, https_get
from tests.domains.helpers import spec_text, unique, write_spec

pytestmark = pytest.mark.e2e

GENERATED_SHOP = names.hostname("acme", "shop", "web", "apps.localhost")
GENERATED_BLOG = names.hostname("acme", "blog", "web", "apps.localhost")


class _HandshakeFailed(Exception):
    pass


def _acme(stack: AcmeStack) -> str:
    return (
        "\n  acme:\n    email: ops@example.test"
        f"\n    ca: {stack.pebble.directory}\n    ca_root: {stack.pebble.listener_ca}"
    )


def _blog(domains: list[str]) -> str:
    return (
        "      blog:\n        type: web\n        image: hosting-test/busybox:latest\n"
        f"        port: 8080\n        domains: {json.dumps(domains)}\n"
    )


def _config(stack: AcmeStack, spec: Spec, verified: frozenset[str]) -> dict[str, Any]:
    config = build_config(
        spec,
        verified_domains=verified,
        upstreams={
            ("acme", "shop"): [stack.upstreams["shop"].dial],
            ("acme", "blog"): [stack.upstreams["blog"].dial],
        },
        admin_listen=stack.edge.admin_listen,
        log_dir=str(stack.edge.log_dir),
        http_port=stack.edge.ports.http,
        https_port=stack.edge.ports.https,
    )
    # Caddy on the host (not in its container) would install its local CA's root into the
    # host's trust store at every load: never let a test do that.
    config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return config


def _trust_pebble_only(stack: AcmeStack) -> ssl.SSLContext:
    # cadata given: the context loads nothing else, not even the system's roots.
    return ssl.create_default_context(cadata=stack.pebble.root_pem())


def _wait_served(
    ctx: ssl.SSLContext, port: int, host: str, timeout: float = 90
) -> tuple[int, dict[str, str], str]:
    """The first successful, verified HTTPS answer for `host` (the certificate is obtained
    in the background after a config load)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return https_get(ctx, port, host, "/")
        except (ssl.SSLError, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"{host} not served over trusted HTTPS within {timeout}s: {last}")


def _verify_cli(folder: Path) -> dict[str, dict[str, Any]]:
    out = run_hosting("domains", "verify", "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    return {d["domain"]: d for d in json.loads(out.stdout)["domains"]}


def test_only_verified_domains_get_certificates_and_routes(
    acme_stack: AcmeStack, tmp_path: Path
) -> None:
    s = acme_stack
    apex, stray = unique("shop"), unique("stray")
    s.dns.add_a(GENERATED_SHOP, "127.0.0.1")
    s.dns.add_a(apex, "127.0.0.1")
    s.dns.set_cname("www." + apex, apex)
    s.dns.add_a(stray, "192.0.2.77")
    text = spec_text([apex, "www." + apex, stray], nameservers=[s.dns.nameserver], acme=_acme(s))
    write_spec(tmp_path, text)
    spec = loads(text)
    store = tmp_path / ".hosting" / "hosting.duckdb"

    checked = _verify_cli(tmp_path)
    assert checked[apex]["status"] == "verified"
    assert checked["www." + apex]["status"] == "verified"
    assert checked[stray]["status"] == "failed"
    assert checked[stray]["reason"] == (
        f"{stray} points at 192.0.2.77, not at the platform's 127.0.0.1"
    )
    verified = verified_domains(spec, store)
    assert verified == frozenset({apex, "www." + apex})

    s.edge.load(_config(s, spec, verified))
    ctx = _trust_pebble_only(s)
    port = s.edge.ports.https
    status, _headers, body = _wait_served(ctx, port, apex)
    assert (status, body) == (200, "hello from shop\n")

    _wait_served(ctx, port, "www." + apex)
    status, headers, _ = https_get(ctx, port, "www." + apex, "/a/b?x=1&y=two")
    assert status in (301, 308)
    assert headers["Location"] == f"https://{apex}/a/b?x=1&y=two"

    # The unverified domain has no route: no certificate, no order at the CA.
    with pytest.raises(ssl.SSLError):
        https_get(ctx, port, stray, "/")
    log = s.pebble.log()
    assert apex in log, "Pebble's log names the domains it was asked for"
    assert stray not in log

    cert = certificate_status(apex, caddy_data=s.edge.data_dir, edge=("127.0.0.1", port))
    assert cert.state == "active"
    assert cert.issuer is not None and "Pebble" in cert.issuer
    assert cert.not_after is not None and cert.renew_after is not None
    assert cert.renew_after < cert.not_after

    out = run_hosting(
        "domains", "--json", "--caddy-data", str(s.edge.data_dir), "--edge", f"127.0.0.1:{port}",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    listed = {d["domain"]: d for d in json.loads(out.stdout)["domains"]}
    assert listed[apex]["certificate"]["status"] == "active"
    assert listed["www." + apex]["certificate"]["status"] == "active"
    assert listed[stray]["certificate"]["status"] == "pending"
    assert listed[stray]["status"] == "failed"

    # The owner fixes the record: it verifies, gets its route and its certificate.
    s.dns.clear_a(stray)
    s.dns.add_a(stray, "127.0.0.1")
    assert _verify_cli(tmp_path)[stray]["status"] == "verified"
    verified = verified_domains(spec, store)
    assert stray in verified
    s.edge.load(_config(s, spec, verified))
    status, _headers, body = _wait_served(ctx, port, stray)
    assert (status, body) == (200, "hello from shop\n")
    assert stray in s.pebble.log()


def test_adding_and_removing_domains_and_routes_under_load_fails_no_request(
    acme_stack: AcmeStack, tmp_path: Path
) -> None:
    s = acme_stack
    apex, extra, blog = unique("shop"), unique("extra"), unique("blog")
    for host in (GENERATED_SHOP, GENERATED_BLOG, apex, extra, blog):
        s.dns.add_a(host, "127.0.0.1")
    with_blog = loads(
        spec_text(
            [apex, extra],
            nameservers=[s.dns.nameserver],
            acme=_acme(s),
            extra_deployments=_blog([blog]),
        )
    )
    without_blog = loads(spec_text([apex, extra], nameservers=[s.dns.nameserver], acme=_acme(s)))
    ctx = _trust_pebble_only(s)
    port = s.edge.ports.https

    # Warm up: every name's certificate exists before the load starts, so a failure below
    # can only come from a config change.
    s.edge.load(_config(s, with_blog, frozenset({apex, extra, blog})))
    for host in (apex, extra, blog):
        _wait_served(ctx, port, host)

    stop = threading.Event()
    results: list[tuple[int, str] | str] = []
    handshake_retries: list[str] = []

    def one_request() -> tuple[int, str]:
        conn = SniHTTPSConnection(apex, port, ctx)
        try:
            try:
                conn.connect()
            except (ssl.SSLError, OSError) as exc:
                raise _HandshakeFailed(f"{type(exc).__name__}: {exc}") from exc
            conn.request("GET", "/")
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def load_generator() -> None:
        while not stop.is_set():
            try:
                try:
                    results.append(one_request())
                except _HandshakeFailed as exc:
                    # Before any byte of the request left the client: a connection-level
                    # failure that HTTP clients retry. Retried once, counted and reported.
                    handshake_retries.append(str(exc))
                    results.append(one_request())
            except Exception as exc:  # every other failure, and a failed retry, counts
                results.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=load_generator)
    thread.start()
    try:
        changes = [
            (without_blog, frozenset({apex})),  # remove a route and a domain
            (with_blog, frozenset({apex, blog})),  # add a route back
            (with_blog, frozenset({apex, extra, blog})),  # add a domain back
            (without_blog, frozenset({apex, extra})),
            (with_blog, frozenset({apex, extra, blog})),
            (without_blog, frozenset({apex})),
        ]
        for spec, verified in changes * 2:
            time.sleep(0.4)
            s.edge.load(_config(s, spec, verified))
        time.sleep(0.4)
    finally:
        stop.set()
        thread.join(timeout=30)

    failures = [r for r in results if not isinstance(r, tuple) or r != (200, "hello from shop\n")]
    assert len(results) >= 20, f"the load generator sent only {len(results)} requests"
    assert failures == [], f"{len(failures)} of {len(results)} failed: {failures[:5]}"
    # The last config has no blog route: its host is gone for real (no certificate, or at
    # least not the blog's content).
    try:
        gone = https_get(ctx, port, blog, "/")
    except ssl.SSLError:
        gone = None
    assert gone is None or gone[2] != "hello from blog\n"
    print(
        f"load generator: {len(results)} requests, 0 failed, {2 * len(changes)} config loads, "
        f"{len(handshake_retries)} TLS handshakes retried: {handshake_retries}"
    )
