"""Login roles on a real PostgreSQL 15: the overlap a rotation needs, and the retirement after.

The SQL is the one `hosting secrets rotate` and `hosting apply` run (hosting.databases.roles),
through the container's local socket as they run it (hosting.databases.local).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hosting.databases.local import run_sql
from hosting.databases.roles import create_login_sql, retire_login_sql
from hosting.errors import ProviderError
from tests.metering.helpers import remove, run_labelled, unique, wait_for

pytestmark = pytest.mark.docker
DOCKER = "unix:///var/run/docker.sock"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(docker_engine: str) -> Iterator[dict[str, Any]]:
    tenant, port, password = unique(), _free_port(), unique("pw")
    name = f"{tenant}_db"
    try:
        run_labelled(
            name, tenant, "db", "database",
            "-e", f"POSTGRES_PASSWORD={password}", "-e", "POSTGRES_USER=owner",
            "-e", "POSTGRES_DB=app", "-p", f"127.0.0.1:{port}:5432", "hosting-test/postgres:15",
        )  # fmt: skip
        owner = {"host": "127.0.0.1", "port": port, "dbname": "app", "user": "owner"}
        wait_for(lambda: _login(owner, password), timeout=90, every=0.5)
        yield {"container": name, "conn": owner, "password": password}
    finally:
        remove([name])


def _login(conn: dict[str, Any], password: str, user: str | None = None) -> bool:
    try:
        with psycopg.connect(
            **{**conn, "user": user or conn["user"]}, password=password, connect_timeout=5
        ) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _text(row: Any) -> tuple[str, ...]:
    # The test image's cluster is SQL_ASCII (no locale in it): psycopg hands text as bytes.
    return tuple(v.decode() if isinstance(v, bytes) else v for v in row)


def _sql(server: dict[str, Any], sql: str) -> str:
    return run_sql(DOCKER, server["container"], "owner", "app", sql)


def test_a_rotation_overlaps_and_then_refuses_the_old_password(server: dict[str, Any]) -> None:
    conn, first = server["conn"], server["password"]
    _sql(server, create_login_sql("owner", 1, "second-password"))
    # Both valid while the dependants roll.
    assert _login(conn, first)
    assert _login(conn, "second-password", "owner_r1")
    with psycopg.connect(
        **{**conn, "user": "owner_r1"}, password="second-password", autocommit=True
    ) as app:
        app.execute("CREATE TABLE orders (id int)")
        app.execute("INSERT INTO orders VALUES (1)")
        # The login switched to the owner at login: what it made is the owner's.
        row = app.execute(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'orders'"
        ).fetchone()
        assert row is not None and _text(row) == ("owner",)
    # A session still open on the old password is ended when it is retired.
    held = psycopg.connect(**conn, password=first, autocommit=True)
    _sql(server, retire_login_sql("owner", 0))
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    assert not _login(conn, first)
    assert _login(conn, "second-password", "owner_r1")
    # The owner still answers on the local socket (backups, the next rotation).
    assert _sql(server, "SELECT count(*) FROM orders").strip() == "1"


def test_a_second_rotation_drops_the_first_login(server: dict[str, Any]) -> None:
    conn = server["conn"]
    _sql(server, create_login_sql("owner", 1, "second-password"))
    _sql(server, retire_login_sql("owner", 0))
    with psycopg.connect(
        **{**conn, "user": "owner_r1"}, password="second-password", autocommit=True
    ) as app:
        app.execute("CREATE TABLE orders (id int)")
        app.execute("RESET ROLE")  # an app that left the owner's role and made its own table
        app.execute("CREATE TABLE scratch (id int)")
    _sql(server, create_login_sql("owner", 2, "third-password"))
    _sql(server, retire_login_sql("owner", 1))
    assert not _login(conn, "second-password", "owner_r1")
    gone = _sql(server, "SELECT count(*) FROM pg_roles WHERE rolname = 'owner_r1'")
    assert gone.strip() == "0"
    with psycopg.connect(
        **{**conn, "user": "owner_r2"}, password="third-password", autocommit=True
    ) as app:
        app.execute("INSERT INTO orders VALUES (2)")
        owners = app.execute(
            "SELECT tablename::text, tableowner::text FROM pg_tables WHERE schemaname = 'public'"
            " ORDER BY tablename"
        ).fetchall()
    assert [_text(r) for r in owners] == [("orders", "owner"), ("scratch", "owner")]


def test_an_interrupted_rotation_is_taken_again(server: dict[str, Any]) -> None:
    """A role made by a rotation whose config write failed is replaced, not a conflict."""
    _sql(server, create_login_sql("owner", 1, "lost-password"))
    _sql(server, create_login_sql("owner", 1, "kept-password"))
    assert not _login(server["conn"], "lost-password", "owner_r1")
    assert _login(server["conn"], "kept-password", "owner_r1")


def test_a_failed_statement_does_not_echo_the_verifier(server: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as raised:
        _sql(server, create_login_sql("no_such_owner", 1, "some-password"))
    assert "no_such_owner" in raised.value.message
    assert "SCRAM-SHA-256$" not in raised.value.message
    assert "some-password" not in raised.value.message


def test_apply_puts_logins_back_after_a_restore_to_before_the_rotation(
    server: dict[str, Any],
) -> None:
    """A point-in-time restore to before a rotation brings back the roles of then: no
    `owner_r1`, and the owner's first password valid again. What apply runs for a rotated
    database (ensure the current login, retire every older one) puts both right."""
    from hosting.databases.roles import ensure_login_sql
    from hosting.databases.scram import verifier

    conn, first = server["conn"], server["password"]
    _sql(server, create_login_sql("owner", 1, "second-password"))
    _sql(server, retire_login_sql("owner", 0))
    # As the restored cluster has it:
    _sql(server, f"DROP ROLE owner_r1; ALTER ROLE owner PASSWORD '{verifier(first)}'")
    assert _login(conn, first) and not _login(conn, "second-password", "owner_r1")
    settle = ensure_login_sql("owner", 1, verifier("second-password")) + retire_login_sql(
        "owner", 0
    )
    _sql(server, settle)
    _sql(server, settle)  # and again on the next apply: nothing changes
    assert _login(conn, "second-password", "owner_r1")
    assert not _login(conn, first)
