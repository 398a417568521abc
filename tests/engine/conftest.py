"""The real engine, driven through the CLI as a user runs it (marker `engine`).

Each module gets its own platform name, so its Docker objects never meet another's, and a
finalizer that destroys the stack and then removes by name whatever a failed test left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hosting.engine import locate
from hosting.provider import firewall, volume_quota
from tests.conftest import require, run_hosting

PASSPHRASE = "engine-test-passphrase-0b1c"

# Every engine test's platform: its own name, the local images, tenants appended below.
PLATFORM = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{proxy: "hosting-test/caddy:latest", postgres: "hosting-test/postgres:15"}}
tenants:
"""


def engine_ready() -> bool:
    state = Path("/nonexistent-state")  # only HOSTING_ENGINE_DIR or PATH can answer
    return locate.find_cli(state) is not None and locate.plugin_path(state).is_file()


@pytest.fixture(scope="session")
def engine(docker_engine: str) -> str:
    """The Pulumi engine built by `hosting engine build` (CI: .ci/run, into HOSTING_ENGINE_DIR)."""
    require(
        locate.ENGINE_DIR_ENV in os.environ and engine_ready(),
        f"the Pulumi engine (hosting engine build, with ${locate.ENGINE_DIR_ENV} set)",
    )
    return os.environ[locate.ENGINE_DIR_ENV]


@dataclass
class Project:
    """A user's folder: hosting.yaml, its secrets in the environment, the CLI run inside it."""

    folder: Path
    platform: str
    env: dict[str, str] = field(default_factory=dict)

    def write(self, spec: str) -> None:
        (self.folder / "hosting.yaml").write_text(spec)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_hosting(*args, cwd=self.folder, env={**self.env, **env})

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = self.run(*args)
        assert out.returncode == 0, f"hosting {' '.join(args)}: {out.stdout}\n{out.stderr}"
        return out

    def plan(self, *args: str) -> tuple[int, dict[str, Any]]:
        out = self.run("plan", "--detailed-exitcode", "--format", "json", *args)
        assert out.returncode in (0, 2), out.stderr
        return out.returncode, json.loads(out.stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["python3", "-m", "hosting", *args],
            cwd=self.folder,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def state_dir(self) -> Path:
        return self.folder / ".hosting"


def changes(plan: dict[str, Any]) -> dict[str, set[tuple[str, str, str]]]:
    """{tenant: {(deployment, resource, op)}} from `plan --format json`."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for tenant in plan["tenants"]:
        for dep in tenant["deployments"]:
            for change in dep["changes"]:
                key = (dep["deployment"] or "", change["resource"], change["op"])
                out.setdefault(tenant["tenant"], set()).add(key)
    return out


def docker_names(kind: str, prefix: str) -> list[str]:
    """Names of containers, volumes or networks that start with `prefix`."""
    listing = {
        "container": ["ps", "-a", "--format", "{{.Names}}"],
        "volume": ["volume", "ls", "--format", "{{.Name}}"],
        "network": ["network", "ls", "--format", "{{.Name}}"],
    }[kind]
    out = subprocess.run(["docker", *listing], capture_output=True, text=True, check=True)
    return sorted(n for n in out.stdout.split() if n.startswith(prefix))


def remove_leftovers(prefix: str) -> None:
    for kind, rm in (
        ("container", ["rm", "-f"]),
        ("volume", ["volume", "rm", "-f"]),
        ("network", ["network", "rm"]),
    ):
        names = docker_names(kind, prefix)
        if names:
            subprocess.run(["docker", *rm, *names], capture_output=True)


@pytest.fixture(scope="module")
def project(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("project")
    platform = "e" + secrets.token_hex(3)
    proj = Project(folder, platform, {"HOSTING_PASSPHRASE": PASSPHRASE})
    try:
        yield proj
    finally:
        if (folder / "hosting.yaml").exists():
            proj.run("destroy", "--yes", "--delete-data")
        remove_leftovers(platform + "_")
        if os.geteuid() == 0:  # what apply as root made on the host, if destroy did not run
            firewall.remove(platform)
            volume_quota.delete(volume_quota.root_of(proj.state_dir))


def api_context(folder: Path) -> Path:
    """A build context for an API that answers /db from PostgreSQL through ${db.url}: the
    local postgres image (it has psql) with busybox's httpd and wget added."""
    ctx = folder / "api"
    (ctx / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    assert busybox is not None, "busybox-static (installed by .ci/run)"
    shutil.copy(busybox, ctx / "busybox")
    (ctx / "www" / "healthz").write_text("ok\n")
    cgi = ctx / "www" / "cgi-bin" / "db"
    cgi.write_text(
        "#!/bin/sh\n"
        'printf "Content-Type: text/plain\\r\\n\\r\\n"\n'
        'psql "$DATABASE_URL" -tAc "select \'db-ok:\' || current_database()" 2>&1\n'
    )
    cgi.chmod(0o755)
    (ctx / "Dockerfile").write_text(
        "FROM hosting-test/postgres:15\n"
        "COPY busybox /bin/busybox\n"
        "COPY www /www\n"
        "USER root\n"
        "RUN ln -s /bin/busybox /usr/local/bin/wget\n"
        "USER postgres\n"
        "ENTRYPOINT []\n"
        'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    )
    return ctx


def edge_root_ca(platform: str, folder: Path) -> ssl.SSLContext:
    """Trust exactly the edge's internal CA (read from its data volume), nothing else."""
    pem = folder / "root.crt"
    source = f"{platform}_edge:/data/caddy/pki/authorities/local/root.crt"
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(["docker", "cp", source, str(pem)], capture_output=True, text=True)
        if out.returncode == 0 and "BEGIN CERTIFICATE" in pem.read_text():
            break
        assert time.monotonic() < deadline, out.stderr
        time.sleep(0.5)
    return ssl.create_default_context(cafile=str(pem))


def https_get(
    ctx: ssl.SSLContext, host: str, path: str = "/", port: int = 443, address: str = "127.0.0.1"
) -> tuple[int, str]:
    """GET https://host/path from the edge at `address` (loopback, or a swarm manager's), the
    certificate checked for `host`."""
    # HTTP/1.0: the body arrives whole, never chunked
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"
    # Longer than the edge holds a request during a replacement (TRY_DURATION): a request it
    # answers late is not a failed one.
    raw = socket.create_connection((address, port), timeout=40)
    with ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(request.encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body
