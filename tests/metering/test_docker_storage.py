"""Code, static and logs storage on a real container, and the CLI end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hosting.metering.engine import Engine
from hosting.metering.storage import storage_cycle
from hosting.spec import load
from tests.conftest import run_hosting
from tests.metering.helpers import docker, remove, run_labelled, unique, wait_for, write_spec

pytestmark = pytest.mark.docker
IMAGE = "hosting-test/busybox:latest"


def test_code_static_and_logs_storage(docker_engine: str, tmp_path: Path) -> None:
    tenant = unique()
    site = tmp_path / "public"
    (site / "img").mkdir(parents=True)
    for name, size in (("index.html", 1000), ("img/a.png", 2000), ("img/b.png", 3000)):
        (site / name).write_bytes(b"x" * size)
    spec_file = write_spec(tmp_path, {tenant: {
        "app": {"type": "api", "image": IMAGE, "port": 8080},
        "docs": {"type": "web", "static": "./public"},
    }})  # fmt: skip
    name = f"{tenant}_app"
    try:
        run_labelled(name, tenant, "app", "api", IMAGE, "sh", "-c",
                     "dd if=/dev/zero of=/www/blob bs=1024 count=512 2>/dev/null;"
                     " yes | head -c 100000; echo log-complete; exec sleep 3600")  # fmt: skip
        log_path = Path(docker("inspect", "-f", "{{.LogPath}}", name))
        # Docker writes the log asynchronously: wait for the last line, not for a size.
        wait_for(lambda: log_path.exists() and b"log-complete" in log_path.read_bytes()[-200:])
        result = storage_cycle(tmp_path / "s.duckdb", Engine(), load(spec_file), spec_dir=tmp_path)
        assert not result.errors
        got = {(s.deployment, s.storage_type): s for s in result.measured}
        assert (got[("docs", "static")].size_bytes, got[("docs", "static")].file_count) == (
            6000, 3,
        )  # fmt: skip
        image = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE))
        code = got[("app", "code")].size_bytes
        assert image + 512 * 1024 <= code <= image + 512 * 1024 + 64 * 1024
        assert got[("app", "logs")].size_bytes == os.stat(log_path).st_size

        # The same through the CLI: `meter --once` measures, `storage` shows it.
        proc = run_hosting("meter", "--once", "--json", "--edge-url", "http://127.0.0.1:9",
                           cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        jobs = {j["job"]: j for j in json.loads(proc.stdout)["jobs"]}
        assert all(j["ok"] for j in jobs.values())
        assert jobs["metrics"]["summary"]["containers"] == 1
        proc = run_hosting("storage", f"{tenant}/docs", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "| docs       | static | 5.9 KB |     3 |" in proc.stdout
    finally:
        remove([name])
