"""The program's container specs on a real Docker engine: hardening, isolation, limits, edge.

Every container here comes from `desired_containers`, the function the Pulumi program
declares its containers from; the edge is loaded with `build_config` through `/load`.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import replace

import psycopg
import pytest

from hosting.edge.caddy import build_config, push_config
from hosting.spec import names
from tests.docker_runtime.conftest import World
from tests.docker_runtime.runtime import docker

pytestmark = pytest.mark.docker


def get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def edge(world: World) -> World:
    """Every app replica and the edge running, the edge loaded with the generated config."""
    for replicas in world.desired.apps.values():
        for cspec in replicas:
            world.engine.start(cspec)
    (world.state_dir / "edge" / "admin").mkdir(parents=True)
    (world.state_dir / "edge" / "logs").mkdir(parents=True)
    world.engine.start(world.desired.edge)
    sock = world.state_dir / "edge" / "admin" / "admin.sock"
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert time.monotonic() < deadline, docker("logs", world.desired.edge.name, check=False)
        time.sleep(0.1)
    for replicas in world.desired.apps.values():
        for cspec in replicas:
            world.engine.wait_healthy(cspec.name)
    push_config(f"unix://{sock}", build_config(world.spec, tls=False))
    return world


def host_of(world: World, tenant: str, deployment: str) -> str:
    kind = world.spec.tenants[tenant].deployments[deployment].type
    return names.hostname(tenant, deployment, kind, world.spec.platform.domain)


def test_postgres_starts_hardened_and_accepts_generated_credentials(world: World) -> None:
    cspec = world.desired.databases[("alpha", "db")]
    assert cspec is not None
    world.engine.start(cspec)
    world.engine.wait_healthy(cspec.name)
    info = world.engine.inspect(cspec.name)
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == 1024 * 1024 * 1024  # starter plan
    assert {"Name": "nproc", "Soft": 512, "Hard": 512} in host["Ulimits"]
    [binding] = host["PortBindings"]["5432/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    assert info["Config"]["Labels"]["hosting.type"] == "database"
    access = world.settings.databases["alpha/db"]
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=access.port,
                user=access.user,
                password=access.password,
                dbname="db_db",
                connect_timeout=5,
            ) as conn:
                row = conn.execute("select current_database(), current_user").fetchone()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert row is not None
    # the test image's initdb runs without a locale (SQL_ASCII), so text comes back as bytes
    got = tuple(v.decode() if isinstance(v, bytes) else v for v in row)
    assert got == ("db_db", access.user)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=access.port,
            user=access.user,
            password="wrong-" + access.password,
            dbname="db_db",
            connect_timeout=5,
        )


def test_web_and_api_answer_through_the_edge(edge: World) -> None:
    port = edge.settings.edge_http_port
    assert get(port, host_of(edge, "alpha", "site")) == (200, "ok\n")
    assert get(port, host_of(edge, "beta", "api"), "/healthz") == (200, "ok\n")
    # an unknown host gets no route
    assert get(port, "nobody.apps.test")[0] != 200


def test_app_containers_are_hardened_and_unpublished(edge: World) -> None:
    for (tenant, _), replicas in edge.desired.apps.items():
        for cspec in replicas:
            info = edge.engine.inspect(cspec.name)
            host = info["HostConfig"]
            assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
            assert not host["PortBindings"]
            assert list(info["NetworkSettings"]["Networks"]) == [
                f"{edge.spec.platform.name}_{tenant}"
            ]
            assert host["LogConfig"]["Config"]["max-size"] == "10m"


def test_tenants_cannot_reach_each_other_but_the_edge_reaches_both(edge: World) -> None:
    alpha = edge.desired.apps[("alpha", "site")][0].name
    beta = edge.desired.apps[("beta", "api")][0].name
    same_tenant = edge.desired.apps[("alpha", "site")][1].name
    # by address: the test image's static busybox cannot resolve names (no NSS), and an
    # address is the stronger claim anyway (a name that does not resolve proves less)
    assert answers(alpha, ip_of(edge, same_tenant))  # the probe works inside a tenant
    assert not answers(alpha, ip_of(edge, beta))
    assert not answers(beta, ip_of(edge, alpha))
    port = edge.settings.edge_http_port
    assert get(port, host_of(edge, "alpha", "site"))[0] == 200
    assert get(port, host_of(edge, "beta", "api"))[0] == 200


def ip_of(world: World, container: str) -> str:
    networks = world.engine.inspect(container)["NetworkSettings"]["Networks"]
    return str(next(iter(networks.values()))["IPAddress"])


def answers(container: str, ip: str) -> bool:
    """An HTTP GET from inside `container` to `ip`:8080 (busybox nc, 3 s connect timeout)."""
    import subprocess

    probe = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080"
    out = subprocess.run(
        ["docker", "exec", container, "sh", "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return "200 OK" in out.stdout


def test_memory_limit_is_enforced_by_the_kernel(world: World) -> None:
    """The free plan's 512 MB, from beta's own spec: a shell that doubles a string past it."""
    base = world.desired.apps[("beta", "api")][0]
    hog = replace(
        base,
        name=base.name + "_hog",
        networks=(),
        health=None,
        restart="no",
        command=("sh", "-c", "x=a; while true; do x=$x$x; done"),
    )
    world.engine.start(hog)
    deadline = time.monotonic() + 60
    while world.engine.inspect(hog.name)["State"]["Running"]:
        assert time.monotonic() < deadline, "the hog was not stopped"
        time.sleep(0.5)
    state = world.engine.inspect(hog.name)["State"]
    assert state["OOMKilled"] is True
    assert world.engine.inspect(hog.name)["HostConfig"]["Memory"] == 512 * 1024 * 1024


def test_a_restarting_replica_loses_no_request(edge: World) -> None:
    port = edge.settings.edge_http_port
    host = host_of(edge, "alpha", "site")
    replicas = [c.name for c in edge.desired.apps[("alpha", "site")]]
    done = threading.Event()

    def restart_each() -> None:
        try:
            for name in replicas:
                docker("restart", "-t", "2", name)
                edge.engine.wait_healthy(name, timeout=60)
        finally:
            done.set()

    worker = threading.Thread(target=restart_each)
    worker.start()
    statuses: list[int] = []
    started = time.monotonic()
    # bounded: at most 2,000 requests or 120 s, on loopback only
    while not done.is_set() and len(statuses) < 2000 and time.monotonic() - started < 120:
        statuses.append(get(port, host)[0])
        time.sleep(0.02)
    worker.join(timeout=120)
    assert len(statuses) > 20, "the restarts finished before enough requests were made"
    assert statuses.count(200) == len(statuses), sorted(set(statuses))


def test_https_with_the_platform_issuer_after_a_graceful_reload(edge: World) -> None:
    """Last in this module: switches the running edge to the TLS config through /load."""
    import subprocess

    sock = edge.state_dir / "edge" / "admin" / "admin.sock"
    push_config(f"unix://{sock}", build_config(edge.spec))  # no acme: Caddy's internal CA
    host = host_of(edge, "alpha", "site")
    port = edge.settings.edge_https_port
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            [
                "curl",
                "-sk",
                "-v",
                "--max-time",
                "5",
                "--resolve",
                f"{host}:{port}:127.0.0.1",
                f"https://{host}:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.stdout == "ok\n" or time.monotonic() > deadline:
            break
        time.sleep(1)  # the internal CA issues the certificate on the first handshakes
    assert out.stdout == "ok\n", out.stderr[-800:]
    assert "Caddy Local Authority" in out.stderr  # the issuer named in the certificate
    # plain HTTP now redirects to HTTPS
    status, _ = get(edge.settings.edge_http_port, host)
    assert status in (301, 308)
