"""The pooler's SCRAM pass-through: the server holds exactly the pooler's verifier, and
neither the password nor the verifier shows in the pooler's or the server's inspect data
(env, argv, labels) or logs."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pytest

from hosting.databases.local import run_sql
from hosting.spec import names
from hosting.stacks.pooler import POOLER_PORT
from tests.pooling.conftest import Pooled

pytestmark = pytest.mark.docker


def _fragments(pooled: Pooled) -> dict[str, str]:
    """The password, the verifier and each of its parts (salt, StoredKey, ServerKey)."""
    head, keys = pooled.verifier.rsplit("$", 1)
    salt = head.split(":", 1)[1]
    stored, server = keys.split(":")
    return {
        "password": pooled.access.current_password,
        "verifier": pooled.verifier,
        "salt": salt,
        "StoredKey": stored,
        "ServerKey": server,
    }


def test_the_server_stores_the_poolers_verifier(pooled: Pooled) -> None:
    stored = run_sql(
        "unix:///var/run/docker.sock",
        pooled.server.name,
        pooled.access.user,
        "postgres",
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{pooled.access.login}'",
    ).strip()
    assert stored == pooled.verifier
    userlist = (pooled.state_dir / "pooler" / "acme_main" / "userlist.txt").read_text()
    assert userlist.splitlines()[0] == f'"{pooled.access.login}" "{stored}"'


def test_a_wrong_password_is_refused_by_the_pooler(pooled: Pooled) -> None:
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        psycopg.connect(
            host=pooled.address(pooled.pooler.name),
            port=POOLER_PORT,
            user=pooled.access.login,
            password=pooled.access.current_password + "x",
            dbname=names.database_name("main"),
            connect_timeout=30,
        ).close()


def test_the_admin_console_is_refused_over_the_network(pooled: Pooled) -> None:
    with pytest.raises(psycopg.OperationalError, match="not allowed"):
        psycopg.connect(
            host=pooled.address(pooled.pooler.name),
            port=POOLER_PORT,
            user=pooled.access.login,
            password=pooled.access.current_password,
            dbname="pgbouncer",
            connect_timeout=30,
        ).close()


def test_no_secret_in_inspect_data_or_logs(pooled: Pooled) -> None:
    # Some traffic first, so the logs have had something to say.
    with psycopg.connect(
        host=pooled.address(pooled.pooler.name),
        port=POOLER_PORT,
        user=pooled.access.login,
        password=pooled.access.current_password,
        dbname=names.database_name("main"),
        connect_timeout=30,
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    inspected = json.dumps(pooled.engine.inspect(pooled.pooler.name))
    logs = subprocess.run(
        ["docker", "logs", pooled.pooler.name], capture_output=True, text=True, check=True
    )
    server_logs = subprocess.run(
        ["docker", "logs", pooled.server.name], capture_output=True, text=True, check=True
    )
    places = {
        "pooler inspect (env, argv, labels)": inspected,
        "pooler log": logs.stdout + logs.stderr,
        "server log": server_logs.stdout + server_logs.stderr,
    }
    assert "pgbouncer" in places["pooler log"].lower(), "the pooler logged nothing at all"
    for where, text in places.items():
        for what, fragment in _fragments(pooled).items():
            assert fragment not in text, f"the {what} is in the {where}"


def test_the_poolers_config_directory_is_the_apply_users_alone(pooled: Pooled) -> None:
    folder = pooled.state_dir / "pooler" / "acme_main"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["hba.txt", "pgbouncer.ini", "userlist.txt"]


def test_pass_through_needs_the_server_to_hold_the_poolers_verifier(pooled: Pooled) -> None:
    """Before apply's sync the server had salted the password itself: the same password,
    refused through the pooler. (After it, every test here logs in.)"""
    assert pooled.login_error_before_sync is not None
    assert "authentication failed" in pooled.login_error_before_sync
