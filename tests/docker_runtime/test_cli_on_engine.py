"""`status`, `credentials` and `logs` read the real engine by labels (no Pulumi needed)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.conftest import run_hosting
from tests.docker_runtime.conftest import SPEC, World

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def running(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "hosting.yaml").write_text(SPEC.format(platform=world.spec.platform.name))
    db = world.desired.databases[("alpha", "db")]
    assert db is not None
    world.engine.start(db)
    for cspec in world.desired.apps[("alpha", "site")]:
        world.engine.start(cspec)
    world.engine.wait_healthy(db.name)
    for cspec in world.desired.apps[("alpha", "site")]:
        world.engine.wait_healthy(cspec.name)
    return world, folder


def test_status_reports_running_healthy_and_pending(running: tuple[World, Path]) -> None:
    _, folder = running
    out = run_hosting("status", "--json", cwd=folder)
    assert out.returncode == 0, out.stderr
    rows = {r["tenant"] + "/" + r["deployment"]: r for r in json.loads(out.stdout)["deployments"]}
    assert rows["alpha/site"]["status"] == "running"
    assert rows["alpha/site"]["health"] == "healthy"
    assert rows["alpha/site"]["replicas_running"] == 2
    assert rows["alpha/db"]["status"] == "running"
    assert rows["beta/api"]["status"] == "pending"  # never started in this test


def test_credentials_hide_the_password_unless_asked(running: tuple[World, Path]) -> None:
    world, folder = running
    access = world.settings.databases["alpha/db"]
    hidden = run_hosting("credentials", "alpha/db", cwd=folder)
    assert hidden.returncode == 0, hidden.stderr
    assert access.password not in hidden.stdout + hidden.stderr
    shown = json.loads(
        run_hosting("credentials", "alpha/db", "--show-secrets", "--json", cwd=folder).stdout
    )
    assert shown["port"] == access.port and shown["user"] == access.user
    # the printed settings work: connect with exactly them
    with psycopg.connect(shown["url"], connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_credentials_with_a_passphrase_but_no_engine_read_the_container(
    running: tuple[World, Path],
) -> None:
    """With $HOSTING_PASSPHRASE set, credentials first asks the stack for the current login
    (after `secrets rotate` it is not the container's); with no engine and no stack here, it
    falls back to the container, whose first password is still valid."""
    world, folder = running
    access = world.settings.databases["alpha/db"]
    out = run_hosting(
        "credentials", "alpha/db", "--show-secrets", "--json", cwd=folder,
        env={"HOSTING_PASSPHRASE": "some-passphrase", "HOSTING_ENGINE_DIR": str(folder / "none")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["user"], shown["password"]) == (access.user, access.password)


def test_logs_of_every_replica(running: tuple[World, Path]) -> None:
    _, folder = running
    out = run_hosting("logs", "alpha/db", cwd=folder)
    assert out.returncode == 0, out.stderr
    assert "database system is ready to accept connections" in out.stdout
