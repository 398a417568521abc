"""Traffic through a real Caddy: bandwidth from the container, requests and errors from the
edge's JSON access log, exactly once across cycles."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.metering.containers import ContainerReader
from hosting.metering.engine import Engine
from hosting.metering.metrics import metrics_cycle
from hosting.spec import Spec, load, names
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, wait_for, write_spec

pytestmark = pytest.mark.docker
IMAGE = "hosting-test/busybox:latest"
BODY = 50 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _caddy_config(port: int, log: Path, routes: dict[str, str]) -> dict[str, object]:
    return {
        "admin": {"disabled": True},
        "logging": {
            "logs": {
                "default": {"exclude": ["http.log.access.edge"]},
                "access": {
                    "writer": {"output": "file", "filename": str(log)},
                    "encoder": {"format": "json"},
                    "include": ["http.log.access.edge"],
                },
            }
        },
        "apps": {
            "http": {
                "servers": {
                    "edge": {
                        "listen": [f"127.0.0.1:{port}"],
                        "automatic_https": {"disable": True},
                        "logs": {"default_logger_name": "edge"},
                        "routes": [
                            {
                                "match": [{"host": [host]}],
                                "handle": [
                                    {"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}
                                ],
                            }
                            for host, dial in routes.items()
                        ],
                    }
                }
            }
        },
    }


@pytest.fixture
def setup(docker_engine: str, caddy_binary: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    tenant = unique()
    network = f"{tenant}_net"
    docker("network", "create", network)
    caddy: subprocess.Popen[bytes] | None = None
    try:
        run_labelled(f"{tenant}_web", tenant, "web", "web", "--network", network, IMAGE)
        docker("exec", f"{tenant}_web", "dd", "if=/dev/zero", "of=/www/big", "bs=1024",
               f"count={BODY // 1024}")  # fmt: skip
        ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    f"{tenant}_web")  # fmt: skip
        spec_file = write_spec(tmp_path, {tenant: {
            "web": {"type": "web", "image": IMAGE, "port": 8080},
            "broken": {"type": "api", "image": IMAGE, "port": 8080,
                       "domains": ["api.example.test"]},
        }})  # fmt: skip
        spec = load(spec_file)
        web_host = names.hostname(tenant, "web", "web", spec.platform.domain)
        port, log = _free_port(), tmp_path / "logs" / "access.log"
        log.parent.mkdir()
        config = tmp_path / "caddy.json"
        config.write_text(json.dumps(_caddy_config(port, log, {
            web_host: f"{ip}:8080",
            "api.example.test": f"127.0.0.1:{_free_port()}",  # nothing listens: 502
        })))  # fmt: skip
        env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d"),
               "XDG_CONFIG_HOME": str(tmp_path / "c")}  # fmt: skip
        caddy = subprocess.Popen(
            [caddy_binary, "run", "--config", str(config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: _get(port, web_host, "/")[0] == 200, timeout=30)
        yield {"tenant": tenant, "spec": spec, "port": port, "log": log, "web_host": web_host}
    finally:
        if caddy is not None:
            caddy.terminate()
            caddy.wait(timeout=10)
        remove([f"{tenant}_web"])
        docker("network", "rm", network, check=False)


def _get(port: int, host: str, path: str) -> tuple[int, int]:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, len(body)
    except OSError:
        return 0, 0


def _count_lines(log: Path) -> int:
    return log.read_text().count("\n") if log.exists() else 0


def test_requests_errors_and_bytes_through_caddy(setup: dict[str, object], tmp_path: Path) -> None:
    tenant, port, log = str(setup["tenant"]), int(str(setup["port"])), Path(str(setup["log"]))
    web_host = str(setup["web_host"])
    store = tmp_path / "s.duckdb"
    reader = ContainerReader(Engine(), frozenset({tenant}))
    spec = setup["spec"]
    assert isinstance(spec, Spec)
    metrics_cycle(store, reader, spec, [log])  # counts the readiness probes: a baseline
    already = _count_lines(log)

    sent = 0
    for _ in range(20):
        status, size = _get(port, web_host, "/big")
        assert status == 200
        sent += size
    for _ in range(3):
        assert _get(port, "api.example.test", "/")[0] == 502
    wait_for(lambda: _count_lines(log) >= already + 23)
    metrics_cycle(store, reader, spec, [log])
    for _ in range(7):
        assert _get(port, web_host, "/big")[0] == 200
        sent += BODY
    wait_for(lambda: _count_lines(log) >= already + 30)
    metrics_cycle(store, reader, spec, [log])

    web = rows(
        store,
        "SELECT requests_count, error_count, bandwidth_out, response_time_avg"
        ' FROM deployment_metrics WHERE tenant = ? AND deployment = ? ORDER BY "timestamp"',
        [tenant, "web"],
    )
    assert [r[0] for r in web[1:]] == [20, 7]  # exactly the requests sent, each once
    assert all(r[1] == 0 for r in web)
    assert all(r[3] is not None and r[3] > 0 for r in web[1:])
    out_after_baseline = sum(r[2] for r in web[1:])
    assert sent <= out_after_baseline <= sent * 1.1 + 64 * 1024
    broken = rows(
        store,
        "SELECT sum(requests_count), sum(error_count) FROM deployment_metrics"
        " WHERE tenant = ? AND deployment = 'broken'",
        [tenant],
    )
    assert broken == [(3, 3)]
    # Another cycle with no traffic: nothing counted twice.
    metrics_cycle(store, reader, spec, [log])
    last = rows(
        store,
        "SELECT requests_count FROM deployment_metrics WHERE tenant = ? AND deployment = ?"
        ' ORDER BY "timestamp" DESC LIMIT 1',
        [tenant, "web"],
    )
    assert last == [(0,)]
