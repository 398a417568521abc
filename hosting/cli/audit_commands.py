"""Audit commands: audit (list), audit verify."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from hosting.audit import log
from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, json_option, table
from hosting.errors import AuditError, UsageError


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    from hosting.dates import since_time

    return None if value is None else since_time(value)


def _time(entry: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def _part(entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key)
    return value if isinstance(value, dict) else {}


def _when(entry: dict[str, Any]) -> str:
    when = _time(entry)
    return f"{when:%Y-%m-%d %H:%M:%S}" if when else str(entry.get("time", "?"))


def _who(entry: dict[str, Any]) -> str:
    who = _part(entry, "who")
    text = str(who.get("user", "?"))
    if who.get("login"):
        text += f" (login {who['login']})"
    if who.get("actor"):
        text += f" for {who['actor']}"
    return text


def _what(entry: dict[str, Any]) -> str:
    what = _part(entry, "what")
    words = [str(what.get("command", "?"))]
    for name, value in (what.get("args") or {}).items():
        shown = value.get("path") if isinstance(value, dict) else value
        words.append(f"{name}={shown}")
    return " ".join(words)


def _result(entry: dict[str, Any]) -> str:
    result = _part(entry, "result")
    if result.get("status") == "ok":
        return "ok"
    text = f"error (exit {result.get('exit_code', '?')})"
    return f"{text}: {result['message']}" if result.get("message") else text


@cli.group(invoke_without_command=True)
@click.option(
    "--since",
    metavar="DATE|DURATION",
    callback=_since,
    help="Only entries from then on: a duration back from now (10m, 2h, 1h30m), a day "
    "(2026-11-05, UTC) or an ISO 8601 time.",
)
@json_option
@click.pass_context
def audit(ctx: click.Context, since: datetime | None, as_json: bool) -> None:
    """The audit log: who ran which state-changing command, when, and with what result.

    Lists the entries of STATE_DIR/audit.jsonl, oldest first. `hosting audit verify` checks
    that none was edited, deleted or reordered."""
    if ctx.invoked_subcommand is not None:
        if since is not None or as_json:
            raise UsageError(
                "--since and --json belong to the listing", "run `hosting audit verify` alone"
            )
        return
    app = ctx.find_object(App)
    assert app is not None
    path = log.path_in(app.state_dir)
    entries, bad = log.read(path)
    for line in bad:
        click.echo(
            f"warning: {path}:{line} is not a readable entry (`hosting audit verify`)", err=True
        )
    if since is not None:
        entries = [e for e in entries if (t := _time(e)) is None or t >= since]
    if as_json:
        echo_json({"file": str(path), "entries": entries, "unreadable_lines": bad})
        return
    if not entries:
        click.echo("no audit entries" + (" since then" if since is not None else ""))
        return
    rows = [[e.get("seq", "?"), _when(e), _who(e), _what(e), _result(e)] for e in entries]
    click.echo(table(["Seq", "Time (UTC)", "Who", "Command", "Result"], rows, right=[0]))


@audit.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check the hash chain: exit 1 naming the first entry edited, deleted or out of order."""
    app = ctx.find_object(App)
    assert app is not None
    path = log.path_in(app.state_dir)
    verdict = log.verify(path)
    if verdict.problem is not None:
        intact = verdict.entries
        raise AuditError(
            f"audit log broken at {verdict.problem.render(path)}",
            "the 1 entry before it is intact"
            if intact == 1
            else f"the {intact} entries before it are intact",
        )
    n = verdict.entries
    click.echo(f"{n} entr{'y' if n == 1 else 'ies'}, chain intact")
    if n:
        # A chain cut short at its end stays valid: a copy of this line kept elsewhere shows it.
        click.echo(f"last: seq {verdict.head.seq}, hash {verdict.head.hash}")
