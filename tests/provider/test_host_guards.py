"""What apply does on the host around the engine, where no engine is needed to see it: the
refusal of an apply that cannot mount the databases' filesystems, and the warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting.errors import ProviderError
from hosting.provider import driver
from hosting.provider.driver import Driver
from hosting.spec import loads

SPEC = """
version: 1
platform: {{name: p, domain: apps.test, public_ipv4: 127.0.0.1, docker: {{host: '{host}'}}}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-01-01
    deployments:
      main: {{type: database}}
"""


def test_apply_without_root_refuses_before_changing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = loads(SPEC.format(host="unix:///var/run/docker.sock"))
    monkeypatch.setattr(driver.os, "geteuid", lambda: 1000)
    with pytest.raises(ProviderError) as caught:
        Driver(spec, state_dir=tmp_path, base_dir=tmp_path).prepare_host()
    assert caught.value.message == (
        "the databases' filesystems of acme are not mounted, and mounting needs root;"
        " nothing was applied"
    )
    assert "as root" in (caught.value.hint or "")
    assert not (tmp_path / "volumes").exists()  # nothing made on the way


def test_a_remote_engine_is_a_warning(tmp_path: Path) -> None:
    spec = loads(SPEC.format(host="tcp://10.9.9.9:2376"))
    assert Driver(spec, state_dir=tmp_path, base_dir=tmp_path).prepare_host() == [
        "database volumes are not size-bounded: the engine is on another host"
    ]
