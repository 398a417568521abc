"""preview, up, refresh and destroy against a real Pulumi CLI (marker `engine`).

The Pulumi CLI cannot be installed on the development machines (its installer downloads at
run time), so these skip there, saying so; anywhere `pulumi` is on PATH they run for real
against the local Docker engine.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from hosting.provider.driver import Driver
from hosting.spec import loads

pytestmark = pytest.mark.engine

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{proxy: "hosting-test/caddy:latest", postgres: "hosting-test/postgres:15"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      site: {{type: web, image: "hosting-test/busybox:latest", port: 8080}}
      main: {{type: database}}
"""


@pytest.fixture
def driver(tmp_path: Path, docker_engine: str) -> Driver:
    if shutil.which("pulumi") is None:
        pytest.skip("Pulumi CLI not on PATH: install it (or `hosting engine install`) to run")
    platform = "t" + secrets.token_hex(4)
    spec = loads(SPEC.format(platform=platform))
    return Driver(
        spec,
        state_dir=tmp_path / "state",
        base_dir=tmp_path,
        passphrase="engine-test-passphrase",
    )


def names_with(prefix: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    )
    return sorted(n for n in out.stdout.split() if n.startswith(prefix))


def test_preview_up_refresh_destroy(driver: Driver) -> None:
    platform = driver.spec.platform.name
    try:
        preview = driver.preview()
        assert {s.op for s in preview.steps} == {"create"}
        assert names_with(platform) == []  # preview touches nothing
        up = driver.up()
        assert f"{platform}_acme_site_0" in names_with(platform)
        assert up.outputs["acme/main"]["port"] >= 15432
        first_password = up.outputs["acme/main"]["password"]
        again = driver.up()
        assert again.steps == []  # nothing changes on a second run
        assert again.outputs["acme/main"]["password"] == first_password
        assert driver.refresh().steps == []
    finally:
        driver.destroy(delete_data=True)
    assert names_with(platform) == []
