"""The audit log as a user meets it: real subprocesses, billing commands that need no engine
and no Docker, `hosting audit` and `hosting audit verify`."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from tests.billing.helpers import PLATFORM, tenant
from tests.conftest import REPO, run_hosting

SECRET_VAR = "AUDIT_TEST_SESSION_KEY"
SECRET = "s3cr3t-audit-value-7f1c9e"  # must never reach the audit log


def _write_spec(root: Path) -> Path:
    acme = tenant("starter", date(2025, 1, 31))
    acme["deployments"] = {
        "shop": {
            "type": "web",
            "image": "hosting-test/busybox:latest",
            "port": 8080,
            "secrets": {"SESSION_KEY": {"env": SECRET_VAR}},
        }
    }
    doc = {"version": 1, "platform": PLATFORM, "tenants": {"acme": acme}}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "hosting.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def hosting(root: Path, *args: str, actor: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), SECRET_VAR: SECRET}
    if actor:
        env["HOSTING_ACTOR"] = actor
    return run_hosting(*args, cwd=root, env=env)


def entries(root: Path) -> list[dict[str, Any]]:
    out = hosting(root, "audit", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["unreadable_lines"] == []
    found: list[dict[str, Any]] = doc["entries"]
    return found


def test_billing_commands_are_recorded_with_who_what_spec_and_result(tmp_path: Path) -> None:
    spec = _write_spec(tmp_path)
    run = hosting(tmp_path, "invoice", "run", "--as-of", "2025-03-31", "--json", actor="ci:42")
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stdout)["created"][0]["invoice_number"]
    assert hosting(tmp_path, "invoice", "mark", first, "paid").returncode == 0
    unknown = hosting(tmp_path, "invoice", "mark", "INV-20990101-000099", "paid")
    assert unknown.returncode == 1
    # Reading, listing and help leave no entry.
    for args in (("invoice", "list"), ("invoice", "mark", "--help"), ("validate",)):
        assert hosting(tmp_path, *args).returncode == 0

    found = entries(tmp_path)
    assert [e["seq"] for e in found] == [1, 2, 3]
    assert [e["what"] for e in found] == [
        {"command": "invoice run", "args": {"as_of": "2025-03-31", "as_json": True}},
        {"command": "invoice mark", "args": {"number": first, "status": "paid"}},
        {"command": "invoice mark", "args": {"number": "INV-20990101-000099", "status": "paid"}},
    ]
    assert [e["result"] for e in found] == [
        {"status": "ok", "exit_code": 0},
        {"status": "ok", "exit_code": 0},
        {
            "status": "error",
            "exit_code": 1,
            "message": "no invoice numbered `INV-20990101-000099`",
        },
    ]
    user = pwd.getpwuid(os.getuid()).pw_name
    assert found[0]["who"]["user"] == user and found[0]["who"]["actor"] == "ci:42"
    assert "actor" not in found[1]["who"]
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    assert {(e["spec"]["path"], e["spec"]["sha256"]) for e in found} == {(str(spec), digest)}

    verify = hosting(tmp_path, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.splitlines()[0] == "3 entries, chain intact"

    text = hosting(tmp_path, "audit")
    assert text.returncode == 0
    assert "error (exit 1): no invoice numbered `INV-20990101-000099`" in text.stdout
    assert f"{user} for ci:42" in text.stdout


def test_verify_names_an_edited_entry_and_a_deleted_one(tmp_path: Path) -> None:
    _write_spec(tmp_path)
    for _ in range(3):
        assert hosting(tmp_path, "invoice", "run", "--as-of", "2025-03-31").returncode == 0
    path = tmp_path / ".hosting" / "audit.jsonl"
    original = path.read_bytes()

    kept = original.splitlines(keepends=True)
    one_byte = kept[1].replace(b'"exit_code":0', b'"exit_code":1')
    path.write_bytes(kept[0] + one_byte + kept[2])
    edited = hosting(tmp_path, "audit", "verify")
    assert edited.returncode == 1
    assert f"{path}:2 (seq 2): edited: its hash does not match its contents" in edited.stderr
    assert "the 1 entry before it is intact" in edited.stderr

    path.write_bytes(kept[0] + kept[2])
    deleted = hosting(tmp_path, "audit", "verify")
    assert deleted.returncode == 1
    assert f"{path}:2 (seq 3): entries deleted before it: seq 2 missing" in deleted.stderr


def test_since_lists_only_newer_entries(tmp_path: Path) -> None:
    _write_spec(tmp_path)
    assert hosting(tmp_path, "invoice", "run", "--as-of", "2025-03-31").returncode == 0
    assert len(entries(tmp_path)) == 1
    future = hosting(tmp_path, "audit", "--since", "2999-01-01", "--json")
    assert future.returncode == 0 and json.loads(future.stdout)["entries"] == []
    past = hosting(tmp_path, "audit", "--since", "2000-01-01", "--json")
    assert [e["seq"] for e in json.loads(past.stdout)["entries"]] == [1]
    recent = hosting(tmp_path, "audit", "--since", "24h", "--json")
    assert [e["seq"] for e in json.loads(recent.stdout)["entries"]] == [1]
    bad = hosting(tmp_path, "audit", "--since", "yesterday")
    assert bad.returncode == 1
    assert "`yesterday` is not a duration or a time" in bad.stderr


def test_no_secret_value_reaches_the_audit_log(tmp_path: Path) -> None:
    _write_spec(tmp_path)
    hosting(tmp_path, "invoice", "run", "--as-of", "2025-03-31", actor="ci")
    hosting(tmp_path, "invoice", "mark", "INV-NOPE", "paid")
    hosting(tmp_path, "subscription", "sync", "--as-of", "2025-03-31")
    path = tmp_path / ".hosting" / "audit.jsonl"
    assert len(path.read_bytes().splitlines()) == 3  # the runs were recorded
    assert SECRET.encode() not in path.read_bytes()
    assert SECRET not in hosting(tmp_path, "audit", "--json").stdout


def test_apply_destroy_and_credentials_are_recorded_when_they_fail_early(tmp_path: Path) -> None:
    """Failures before the engine is asked anything: the entries show the hook covers these
    commands by path (a real apply is tested against the engine)."""
    _write_spec(tmp_path)
    runs = [
        ("apply", "--tenant", "nosuch"),
        ("destroy", "--yes", "--tenant", "nosuch"),
        ("credentials", "acme/shop", "--show-secrets"),
        ("credentials", "acme/shop"),  # without the password: not recorded
    ]
    for args in runs:
        assert hosting(tmp_path, *args).returncode == 1
    found = entries(tmp_path)
    assert [e["what"] for e in found] == [
        {"command": "apply", "args": {"tenant": "nosuch"}},
        {"command": "destroy", "args": {"yes": True, "tenant": "nosuch"}},
        {"command": "credentials", "args": {"ref": "acme/shop", "show_secrets": True}},
    ]
    assert [(e["result"]["status"], e["result"]["exit_code"]) for e in found] == [("error", 1)] * 3
    assert found[2]["result"]["message"] == "`acme/shop` is a web deployment, not a database"
    assert SECRET.encode() not in (tmp_path / ".hosting" / "audit.jsonl").read_bytes()
