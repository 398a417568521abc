"""Session fixtures for the end-to-end domain tests, everything on loopback:

- Pebble (a test ACME CA) with a TLS listener certificate made here with openssl, resolving
  names through the session's pebble-challtestsrv, validating challenges on the edge's ports;
- a real Caddy (`caddy run`), admin API on a unix socket in a tmp dir, storage in a tmp dir;
- a busybox httpd upstream standing in for a deployment's container.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hosting.edge.caddy import push_config
from tests.conftest import require
from tests.domains.helpers import ChallTestSrv, free_port, wait_for_port


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_listener_cert(folder: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) for 127.0.0.1/localhost: Pebble needs a TLS
    certificate for its own listener and Debian ships none."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-subj", "/CN=hosting test listener CA", "-days", "2", cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.csr",
        "-subj", "/CN=localhost", cwd=folder,
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "san.ext", cwd=folder,
    )  # fmt: skip
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


@dataclass
class EdgePorts:
    http: int
    https: int


@dataclass
class Pebble:
    directory: str
    listener_ca: Path
    management_port: int
    log_path: Path

    def root_pem(self) -> str:
        """Pebble's issuing root (regenerated at every start): the only root tests trust."""
        ctx = ssl.create_default_context(cafile=str(self.listener_ca))
        conn = http.client.HTTPSConnection("127.0.0.1", self.management_port, context=ctx)
        try:
            conn.request("GET", "/roots/0")
            resp = conn.getresponse()
            body = resp.read().decode()
        finally:
            conn.close()
        assert resp.status == 200, f"/roots/0: HTTP {resp.status}"
        return body

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def edge_ports() -> EdgePorts:
    return EdgePorts(http=free_port(), https=free_port())


@pytest.fixture(scope="session")
def pebble(
    pebble_binaries: tuple[str, str],
    challtestsrv: ChallTestSrv,
    edge_ports: EdgePorts,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pebble]:
    require(shutil.which("openssl") is not None, "openssl (for Pebble's listener certificate)")
    folder = tmp_path_factory.mktemp("pebble")
    ca, cert, key = make_listener_cert(folder / "listener")
    port, mgmt = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": str(cert),
            "privateKey": str(key),
            # Pebble validates challenges on these ports: they must be the edge's.
            "httpPort": edge_ports.http,
            "tlsPort": edge_ports.https,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    log_path = folder / "pebble.log"
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                pebble_binaries[0],
                "-config",
                str(folder / "pebble.json"),
                "-dnsserver",
                challtestsrv.nameserver,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )
    try:
        wait_for_port(port, proc, "pebble")
        wait_for_port(mgmt, proc, "pebble management")
        yield Pebble(f"https://127.0.0.1:{port}/dir", ca, mgmt, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Edge:
    admin: str  # unix:///…/admin.sock
    admin_listen: str  # the same, as Caddy's config spells it
    ports: EdgePorts
    data_dir: Path  # Caddy's storage (certificates/, acme/, …)
    log_dir: Path

    def load(self, config: dict[str, Any]) -> None:
        push_config(self.admin, config)


@pytest.fixture(scope="session")
def caddy_edge(
    caddy_binary: str, edge_ports: EdgePorts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    folder = tmp_path_factory.mktemp("caddy")
    sock = folder / "admin.sock"
    (folder / "logs").mkdir()
    (folder / "boot.json").write_text(json.dumps({"admin": {"listen": f"unix/{sock}"}}))
    env = {
        **os.environ,
        "HOME": str(folder),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }
    log = (folder / "caddy.log").open("wb")
    proc = subprocess.Popen(
        [caddy_binary, "run", "--config", str(folder / "boot.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=folder,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"caddy did not start: {(folder / 'caddy.log').read_text()}")
            time.sleep(0.05)
        yield Edge(
            admin=f"unix://{sock}",
            admin_listen=f"unix/{sock}",
            ports=edge_ports,
            data_dir=folder / "data" / "caddy",
            log_dir=folder / "logs",
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Upstream:
    dial: str
    body: str


def _busybox_httpd(folder: Path, body: str) -> tuple[subprocess.Popen[bytes], Upstream]:
    www = folder / "www"
    www.mkdir(parents=True)
    (www / "index.html").write_text(body)
    port = free_port()
    proc = subprocess.Popen(
        ["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(www)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, "busybox httpd")
    return proc, Upstream(f"127.0.0.1:{port}", body)


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Upstream]]:
    """Two deployments' apps: busybox httpd processes on loopback."""
    require(shutil.which("busybox") is not None, "busybox (Debian package busybox)")
    procs = []
    out = {}
    try:
        for name in ("shop", "blog"):
            proc, up = _busybox_httpd(tmp_path_factory.mktemp(name), f"hello from {name}\n")
            procs.append(proc)
            out[name] = up
        yield out
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


@dataclass
class AcmeStack:
    pebble: Pebble
    edge: Edge
    dns: ChallTestSrv
    upstreams: dict[str, Upstream]


@pytest.fixture(scope="session")
def acme_stack(
    pebble: Pebble,
    caddy_edge: Edge,
    challtestsrv: ChallTestSrv,
    upstreams: dict[str, Upstream],
) -> AcmeStack:
    _register_acme_account(pebble, caddy_edge, challtestsrv)
    return AcmeStack(pebble, caddy_edge, challtestsrv, upstreams)


def _register_acme_account(pebble: Pebble, edge: Edge, dns: ChallTestSrv) -> None:
    """Have Caddy create its ACME account with one certificate before the tests load many.

    Debian's Caddy 2.6 races when its first config holds several names: each obtain
    registers an account at once, storage keeps one key while an order is signed for the
    other, and Pebble answers "JWS verification error" on every retry. Caddy 2.7+ (the edge's
    default image) serialises account creation; with one name first, 2.6 is fine too.
    """
    host = "account-warmup.example.test"
    dns.add_a(host, "127.0.0.1")
    issuer = {
        "module": "acme",
        "ca": pebble.directory,
        "email": "ops@example.test",
        "trusted_roots_pem_files": [str(pebble.listener_ca)],
    }
    edge.load(
        {
            "admin": {"listen": edge.admin_listen},
            "apps": {
                "http": {
                    "http_port": edge.ports.http,
                    "https_port": edge.ports.https,
                    "servers": {
                        "warmup": {
                            "listen": [f":{edge.ports.https}"],
                            "routes": [
                                {
                                    "match": [{"host": [host]}],
                                    "handle": [{"handler": "static_response", "body": "ok"}],
                                }
                            ],
                        }
                    },
                },
                "tls": {"automation": {"policies": [{"issuers": [issuer]}]}},
                "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
            },
        }
    )
    ctx = ssl.create_default_context(cadata=pebble.root_pem())
    deadline = time.monotonic() + 90
    while True:
        try:
            https_get(ctx, edge.ports.https, host)
            return
        except (ssl.SSLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class SniHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port with `host` as SNI, Host header and the name verified."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float = 10):
        super().__init__(host, port, context=context, timeout=timeout)
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def https_get(
    ctx: ssl.SSLContext, port: int, host: str, path: str = "/"
) -> tuple[int, dict[str, str], str]:
    conn = SniHTTPSConnection(host, port, ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode(errors="replace")
    finally:
        conn.close()
