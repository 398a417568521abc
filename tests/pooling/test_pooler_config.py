"""The pooler's files, and the verifier both sides hold."""

from __future__ import annotations

from hosting.spec.models import Pooling
from hosting.stacks.pooler import HBA, config_ini, pooled_verifier, userlist


def test_the_verifier_is_stable_and_differs_by_database_and_password() -> None:
    a = pooled_verifier("acme/main", "pw-1")
    assert a == pooled_verifier("acme/main", "pw-1")  # no churn between runs
    assert a.startswith("SCRAM-SHA-256$4096:")
    salt = a.split("$")[1].split(":")[1]
    other_db = pooled_verifier("acme/other", "pw-1")
    assert other_db.split("$")[1].split(":")[1] != salt  # same password, another salt
    assert pooled_verifier("acme/main", "pw-2") != a


def test_the_ini_names_the_server_and_the_settings() -> None:
    ini = config_ini("demo", "acme", "main-db", Pooling(mode="session", default_pool_size=7))
    assert ini.splitlines()[:2] == [
        "[databases]",
        "db_main_db = host=demo_acme_main-db_0 port=5432 dbname=db_main_db",
    ]
    settings = dict(
        line.split(" = ", 1) for line in ini.splitlines() if " = " in line and "host=" not in line
    )
    assert settings["pool_mode"] == "session"
    assert settings["max_client_conn"] == "500"
    assert settings["default_pool_size"] == "7"
    assert settings["listen_port"] == "6432"
    assert settings["auth_type"] == "hba"
    assert settings["auth_file"] == "/etc/pgbouncer/userlist.txt"
    assert "SCRAM" not in ini  # the secret is in the auth file only


def test_the_network_is_scram_only_and_the_console_peer_only() -> None:
    assert HBA.splitlines() == [
        "local pgbouncer postgres peer",
        "host pgbouncer all 0.0.0.0/0 reject",
        "host pgbouncer all ::/0 reject",
        "host all postgres 0.0.0.0/0 reject",
        "host all postgres ::/0 reject",
        "host all all 0.0.0.0/0 scram-sha-256",
        "host all all ::/0 scram-sha-256",
    ]


def test_the_auth_file_lists_the_login_and_the_console_user_by_verifier_only() -> None:
    text = userlist("acme/main", 'u_a"b', "pw-1")
    login, console = text.splitlines()
    assert login == f'"u_a""b" "{pooled_verifier("acme/main", "pw-1")}"'
    assert console.startswith('"postgres" "SCRAM-SHA-256$4096:')
    assert "pw-1" not in text
    assert userlist("acme/main", 'u_a"b', "pw-1") == text  # the same file every run
