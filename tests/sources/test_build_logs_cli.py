"""`hosting logs T/D --build [--follow]` through the real CLI (issue 17): the whole log, and
while a build runs, its new lines until it ends."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import run_hosting

SPEC = """\
version: 1
platform: {name: demo, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-01-01
    deployments:
      shop: {type: web, source: ./app}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "package.json").write_text(json.dumps({"main": "i.js"}))
    (tmp_path / "hosting.yaml").write_text(SPEC)
    return tmp_path / ".hosting" / "logs" / "build"


def test_without_a_build_the_hint_names_source(tmp_path: Path) -> None:
    project(tmp_path)
    out = run_hosting("logs", "acme/shop", "--build", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr == (
        "error: no build log for acme/shop (hint: only deployments with `build:` or "
        "`source:` have one, after apply)\n"
    )


def test_follow_prints_new_lines_until_the_build_ends(tmp_path: Path) -> None:
    logs = project(tmp_path)
    logs.mkdir(parents=True)
    log, marker = logs / "acme_shop.log", logs / "acme_shop.building"
    log.write_text("Step 1/3 : FROM node\n")
    marker.touch()
    proc = subprocess.Popen(
        ["python3", "-m", "hosting", "logs", "acme/shop", "--build", "--follow"],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "Step 1/3 : FROM node\n"  # printed, still following
        assert proc.poll() is None
        with log.open("a") as f:
            f.write("Step 2/3 : COPY app/ /app/\n")
        assert proc.stdout.readline() == "Step 2/3 : COPY app/ /app/\n"
        with log.open("a") as f:
            f.write("Successfully built\n")
        marker.unlink()  # the build ended: follow returns after the last line
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert rest == "Successfully built\n"
    assert (proc.returncode, err) == (0, "")
