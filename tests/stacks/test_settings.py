"""Ports and credentials: stable across runs, never colliding, never moving."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting.errors import SecretError
from hosting.spec import loads
from hosting.spec.models import Spec
from hosting.stacks.settings import (
    DatabaseAccess,
    allocate_ports,
    derived_password,
    ensure_databases,
    resolve_secrets,
)


def test_new_databases_get_the_lowest_free_ports_in_order() -> None:
    assert allocate_ports({}, ["a/x", "b/y"]) == {"a/x": 15432, "b/y": 15433}


def test_given_ports_never_move_and_retired_ones_are_not_reused() -> None:
    existing = {"a/x": 15432, "gone/db": 15433, "b/y": 15434}
    out = allocate_ports(existing, ["b/y", "c/new", "a/x"])
    assert out["a/x"] == 15432 and out["b/y"] == 15434
    assert out["c/new"] == 15435  # 15433 still belongs to the retired database
    assert len(set(out.values())) == len(out)


def test_credentials_are_kept_and_new_ones_are_strong(example_spec: Spec) -> None:
    first = ensure_databases(example_spec, {})
    again = ensure_databases(example_spec, first)
    assert again == first
    passwords = [a.password for a in first.values()]
    assert len(set(passwords)) == len(passwords)
    assert all(len(p) >= 40 for p in passwords)


def test_a_new_database_does_not_disturb_the_others(example_spec: Spec) -> None:
    kept = {"umbrella/ledger": DatabaseAccess("u", "p", 20000, version=15)}
    out = ensure_databases(example_spec, kept)
    assert out["umbrella/ledger"] == DatabaseAccess("u", "p", 20000, version=15)
    assert out["acme/main"].port == 15432


SPEC = """
version: 1
platform: {name: p, domain: apps.test, public_ipv4: 127.0.0.1}
tenants:
  t:
    name: T
    email: a@b.test
    plan: starter
    started: 2026-01-01
    deployments:
      w:
        type: web
        image: x:1
        port: 80
        secrets: {TOKEN: {env: T_TOKEN}, KEY: {file: key.txt}}
"""


def test_a_config_from_before_versions_records_the_version_its_data_runs_on() -> None:
    """The file already says 17 while the database still runs on 15 data: that is an upgrade,
    not data recorded as 17 (the 17 server would refuse a 15 data directory)."""
    from hosting.databases.upgrade import pending

    spec = loads(SPEC.replace("      w:\n", "      db: {type: database, version: 17}\n      w:\n"))
    before_versions = {"t/db": DatabaseAccess("u", "p", 20000)}
    running = ensure_databases(spec, before_versions, data_version=lambda key: 15)
    assert running["t/db"].version == 15
    assert [(u.ref, u.old, u.new) for u in pending(spec, running)] == [("t/db", 15, 17)]
    # nothing to ask (no container): the file's version, as before
    unknown = ensure_databases(spec, before_versions, data_version=lambda key: None)
    assert unknown["t/db"].version == 17
    assert pending(spec, unknown) == []


def test_secrets_resolve_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("from-file\n")
    spec = loads(SPEC)
    out = resolve_secrets(spec, tmp_path, {"T_TOKEN": "from-env"})
    assert out == {"t/w/TOKEN": "from-env", "t/w/KEY": "from-file"}


def test_missing_secret_names_the_variable_not_a_value(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("s3cr3t")
    with pytest.raises(SecretError) as err:
        resolve_secrets(loads(SPEC), tmp_path, {})
    assert "$T_TOKEN" in err.value.message and "s3cr3t" not in err.value.message


def test_a_derived_password_is_the_hmac_of_platform_and_database_under_the_passphrase() -> None:
    import base64
    import hashlib
    import hmac

    # Worked independently of the code: HMAC-SHA256, key = passphrase, URL-safe base64.
    mac = hmac.new(b"pass-1", b"hosting database password v1\0demo\0acme/main", hashlib.sha256)
    expected = base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
    assert derived_password("pass-1", "demo", "acme/main") == expected
    assert len(expected) == 43  # 256 bits
    others = {
        derived_password("pass-2", "demo", "acme/main"),
        derived_password("pass-1", "prod", "acme/main"),
        derived_password("pass-1", "demo", "acme/other"),
    }
    assert expected not in others and len(others) == 3


def test_only_new_databases_take_the_derived_password(example_spec: Spec) -> None:
    first = ensure_databases(example_spec, {})
    keys = sorted(first)
    kept = {keys[0]: first[keys[0]]}
    out = ensure_databases(example_spec, kept, lambda key: f"derived-{key}")
    assert out[keys[0]] == first[keys[0]]
    assert all(out[k].password == f"derived-{k}" for k in keys[1:])
