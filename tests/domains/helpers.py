"""Shared pieces for the domain tests: free ports, a spec builder, the DNS test server's API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from hosting.spec import Spec, loads


def free_port() -> int:
    """A port free for both TCP and UDP on loopback right now (DNS servers bind both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def unique(label: str = "d") -> str:
    """A test domain nobody else in the session uses."""
    return f"{label}-{uuid.uuid4().hex[:8]}.example.test"


class ChallTestSrv:
    """pebble-challtestsrv's management API (https://github.com/letsencrypt/pebble)."""

    def __init__(self, dns_port: int, management_port: int) -> None:
        self.dns_port = dns_port
        self.management_port = management_port

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def _post(self, path: str, body: dict[str, object]) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.management_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200, f"{path}: HTTP {resp.status}"

    def add_a(self, host: str, *addresses: str) -> None:
        self._post("/add-a", {"host": host + ".", "addresses": list(addresses)})

    def clear_a(self, host: str) -> None:
        self._post("/clear-a", {"host": host + "."})

    def add_aaaa(self, host: str, *addresses: str) -> None:
        self._post("/add-aaaa", {"host": host + ".", "addresses": list(addresses)})

    def set_cname(self, host: str, target: str) -> None:
        self._post("/set-cname", {"host": host + ".", "target": target + "."})

    def clear_cname(self, host: str) -> None:
        self._post("/clear-cname", {"host": host + "."})

    def set_servfail(self, host: str) -> None:
        self._post("/set-servfail", {"host": host + "."})


def spec_text(
    domains: list[str],
    *,
    nameservers: list[str],
    public_ipv6: str | None = None,
    acme: str = "",
    deployment: str = "shop",
    extra_deployments: str = "",
) -> str:
    ns = json.dumps(nameservers)
    v6 = f"\n  public_ipv6: '{public_ipv6}'" if public_ipv6 else ""
    return f"""version: 1
platform:
  name: t
  domain: apps.localhost
  public_ipv4: 127.0.0.1{v6}{acme}
  dns:
    nameservers: {ns}
tenants:
  acme:
    name: Acme
    email: ops@acme.test
    plan: starter
    started: 2026-11-01
    deployments:
      {deployment}:
        type: web
        image: hosting-test/busybox:latest
        port: 8080
        domains: {json.dumps(domains)}
{extra_deployments}"""


def make_spec(domains: list[str], *, nameservers: list[str], **kw: str | None) -> Spec:
    return loads(spec_text(domains, nameservers=nameservers, **kw))  # type: ignore[arg-type]


def write_spec(folder: Path, text: str) -> Path:
    path = folder / "hosting.yaml"
    path.write_text(text)
    return path
