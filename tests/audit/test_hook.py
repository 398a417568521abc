"""Which invocations main() records, found from the arguments as click resolves them; apply
itself needs the engine, so its entry is checked here by command path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
import pytest

from hosting.audit import log
from hosting.cli import auditing, cli, main
from hosting.errors import AuditError


def _begin(tmp_path: Path, *args: str) -> auditing.Invocation | None:
    return auditing.begin(cli, ["--state-dir", str(tmp_path / "state"), *args])


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["apply", "--yes"], "apply"),
        (["destroy", "--yes"], "destroy"),
        (["refresh"], "refresh"),
        (["credentials", "acme/main", "--show-secrets"], "credentials"),
        (["invoice", "run"], "invoice run"),
        (["invoice", "mark", "INV-20250228-000001", "paid"], "invoice mark"),
        (["store", "restore", "latest", "--yes"], "store restore"),
        (["backup", "restore", "acme/main", "latest", "--yes"], "backup restore"),
        (["domains", "--tenant", "acme", "verify"], "domains verify"),
        (["subscription", "sync"], "subscription sync"),
    ],
)
def test_state_changing_commands_are_audited(tmp_path: Path, args: list[str], command: str) -> None:
    inv = _begin(tmp_path, *args)
    assert inv is not None
    assert inv.command == command
    assert inv.state_dir == tmp_path / "state"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["apply", "--help"],
        ["invoice", "mark", "X", "paid", "-h"],
        ["credentials", "acme/main"],
        ["invoice", "list"],
        ["plan"],
        ["domains"],
        ["audit"],
        ["no-such-command"],
    ],
)
def test_reading_and_help_are_not(tmp_path: Path, args: list[str]) -> None:
    assert _begin(tmp_path, *args) is None


def test_apply_of_a_saved_plan_records_the_plan_files_hash(tmp_path: Path) -> None:
    plan = tmp_path / "reviewed.plan.json"
    plan.write_text('{"format_version": 1}')
    inv = _begin(tmp_path, "apply", str(plan))
    assert inv is not None and inv.command == "apply"
    assert inv.args == {
        "plan_file": {
            "path": str(plan),
            "sha256": hashlib.sha256(b'{"format_version": 1}').hexdigest(),
        }
    }


def test_only_arguments_given_are_recorded_and_secret_named_ones_without_value(
    tmp_path: Path,
) -> None:
    command = click.Command(
        "rotate-test",
        params=[
            click.Option(["--passphrase"]),
            click.Option(["--api-token"]),
            click.Option(["--show-secrets"], is_flag=True),
            click.Option(["--tenant"]),
            click.Option(["--keep"], type=int, default=7),
        ],
    )
    ctx = command.make_context(
        "rotate-test",
        ["--passphrase", "hunter2", "--api-token=tok-123", "--show-secrets", "--tenant", "acme"],
        resilient_parsing=True,
    )
    assert auditing._args(ctx) == {
        "passphrase": "[removed]",
        "api_token": "[removed]",
        "show_secrets": True,
        "tenant": "acme",
    }


def test_an_interrupted_command_is_recorded_with_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setitem(
        cli.commands, "interrupt-me", click.Command("interrupt-me", callback=interrupted)
    )
    monkeypatch.setitem(auditing.AUDITED, ("interrupt-me",), auditing._always)
    with pytest.raises(SystemExit) as done:
        main(["--state-dir", str(tmp_path), "interrupt-me"])
    assert done.value.code == 130
    [entry] = log.read(tmp_path / "audit.jsonl")[0]
    assert entry["what"] == {"command": "interrupt-me", "args": {}}
    assert entry["result"] == {"status": "error", "exit_code": 130, "message": "interrupted"}


def test_a_damaged_log_stops_the_command_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[bool] = []
    monkeypatch.setitem(
        cli.commands, "change-me", click.Command("change-me", callback=lambda: ran.append(True))
    )
    monkeypatch.setitem(auditing.AUDITED, ("change-me",), auditing._always)
    (tmp_path / "audit.jsonl").write_bytes(b'{"seq": 1, "ha')  # a write cut short
    with pytest.raises(SystemExit) as done:
        main(["--state-dir", str(tmp_path), "change-me"])
    assert done.value.code == 1 and ran == []
    assert "damaged at line 1" in capsys.readouterr().err
    with pytest.raises(AuditError):
        auditing.begin(cli, ["--state-dir", str(tmp_path), "change-me"])


def test_the_entry_is_canonical_json_with_who_and_spec(tmp_path: Path) -> None:
    spec = tmp_path / "hosting.yaml"
    spec.write_text("version: 1\n")
    inv = auditing.begin(cli, ["-f", str(spec), "invoice", "run", "--as-of", "2025-03-31"])
    assert inv is not None
    auditing.finish(inv, 0, None)
    raw = (tmp_path / ".hosting" / "audit.jsonl").read_bytes()
    entry = json.loads(raw)
    assert entry["spec"] == {
        "path": str(spec),
        "sha256": hashlib.sha256(b"version: 1\n").hexdigest(),
    }
    assert entry["what"] == {"command": "invoice run", "args": {"as_of": "2025-03-31"}}
    assert entry["result"] == {"status": "ok", "exit_code": 0}
    assert entry["time"].endswith("Z") and entry["started"] <= entry["time"]
