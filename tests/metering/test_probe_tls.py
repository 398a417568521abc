"""The health probe through an HTTPS edge: a real Caddy with its internal CA picks the site by
SNI, and the probe sees the app's answer, not a redirect."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from hosting.metering.health import HEALTHY, UNHEALTHY, http_probe
from tests.metering.helpers import wait_for

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _site(host: str, status: int) -> dict[str, object]:
    return {
        "match": [{"host": [host]}],
        "handle": [{"handler": "static_response", "status_code": status, "body": "x"}],
    }


def test_https_probe_uses_the_deployment_name(caddy_binary: str, tmp_path: Path) -> None:
    https_port, http_port = _free_port(), _free_port()
    hosts = ["web-good.apps.localhost", "web-sick.apps.localhost"]
    config = {
        "admin": {"disabled": True},
        "apps": {
            "http": {
                "http_port": http_port,
                "https_port": https_port,
                "servers": {
                    "edge": {
                        "listen": [f"127.0.0.1:{https_port}"],
                        "routes": [_site(hosts[0], 200), _site(hosts[1], 503)],
                    }
                },
            },
            "tls": {"automation": {"policies": [{"subjects": hosts,
                                                 "issuers": [{"module": "internal"}]}]}},
            "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
        },
    }  # fmt: skip
    (tmp_path / "caddy.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d"),
           "XDG_CONFIG_HOME": str(tmp_path / "c")}  # fmt: skip
    caddy = subprocess.Popen(
        [caddy_binary, "run", "--config", str(tmp_path / "caddy.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        edge = f"https://127.0.0.1:{https_port}"
        good = wait_for(
            lambda: (p := http_probe(edge, hosts[0], "/healthz", 3)).status == HEALTHY and p,
            timeout=30,
        )
        assert good.http_status == 200
        sick = http_probe(edge, hosts[1], "/healthz", 3)
        assert (sick.status, sick.http_status) == (UNHEALTHY, 503)
        unknown = http_probe(edge, "web-none.apps.localhost", "/", 3)
        assert unknown.status == UNHEALTHY  # no certificate for that name: the handshake fails
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
