"""Which invocations the audit log records, and what their entries say.

`main()` asks `begin()` before running a command and hands the outcome to `finish()`. The
command path comes from click's own resolution of the arguments (resilient parsing, as shell
completion does it), so only the command module that is about to run anyway gets imported.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from hosting.cli.context import App
from hosting.errors import HostingError

if TYPE_CHECKING:
    from datetime import datetime

# Every command runs through begin(): what only an audited command needs (hashing, the log,
# click's resolver) is imported once it is known to be one, so `--help` stays fast.

Params = Mapping[str, Any]


def _always(_params: Params) -> bool:
    return True


# Every command that changes state or reveals a secret, by command path; the predicate sees
# the leaf's parsed parameters. Paths of commands not written yet match nothing until they are.
AUDITED: dict[tuple[str, ...], Callable[[Params], bool]] = {
    ("apply",): _always,  # plain and `apply FILE`
    ("destroy",): _always,
    ("refresh",): _always,
    ("credentials",): lambda params: bool(params.get("show_secrets")),
    ("invoice", "run"): _always,
    ("invoice", "mark"): _always,
    ("invoice", "credit"): _always,  # a credit note: money off an issued invoice
    ("invoice", "send"): _always,  # an email to a tenant, recorded as a delivery
    ("invoice", "collect"): _always,  # Stripe customers and PaymentIntents
    ("invoice", "refund"): _always,  # a Stripe refund and its credit note
    ("payments", "dunning"): _always,  # retries, reminders, suspensions
    ("payments", "webhook"): _always,  # and each event that changed an invoice, on its own
    ("subscription", "sync"): _always,  # the billing history invoices are priced from
    ("meter", "import"): _always,  # usage that invoices charge for
    ("store", "restore"): _always,
    ("backup", "restore"): _always,
    ("domains", "verify"): _always,
    ("secrets", "rotate"): _always,
    ("db", "promote"): _always,
    ("secrets", "change-passphrase"): _always,
}

# Parameters whose value could be a secret are recorded as given, never with their value.
_SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth", re.I)
REMOVED = "[removed]"
_ACTOR_MAX = 200


class Invocation:
    """An audited command about to run."""

    def __init__(
        self, command: str, args: dict[str, Any], spec: dict[str, Any], state_dir: Path
    ) -> None:
        from datetime import UTC, datetime

        self.command, self.args, self.spec, self.state_dir = command, args, spec, state_dir
        self.started = datetime.now(UTC)


def begin(group: click.Group, argv: list[str]) -> Invocation | None:
    """The invocation to record, or None when `argv` names no audited command (or asks only
    for help). An AuditError when the log cannot take the entry: the command must not run."""
    if not {path[0] for path in AUDITED} & set(argv):  # no audited command is named
        return None
    from click.shell_completion import _resolve_context

    try:
        ctx = _resolve_context(group, {}, "hosting", list(argv))
    except Exception:  # resolution never fails on bad input; the real run reports anything else
        return None
    chain = [ctx]
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)
    chain.reverse()  # root first
    path = tuple(c.info_name or "" for c in chain[1:])
    wants = AUDITED.get(path)
    if wants is None or not wants(ctx.params) or any(_asks_help(c) for c in chain):
        return None
    import errno

    from hosting.audit import log

    root = chain[0].params
    app = App(file=root.get("file") or "hosting.yaml", state_dir_option=root.get("state_dir"))
    try:
        state_dir = app.state_dir.absolute()  # the command may change directory
        file = log.path_in(state_dir)
        if not os.access(file if file.exists() else state_dir, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable", str(file))
        log.head(file)  # a damaged end cannot be continued: say so now
    except OSError as exc:
        raise _unrecordable(exc) from None
    args: dict[str, Any] = {}
    for c in chain[1:]:
        args.update(_args(c))
    return Invocation(
        command=" ".join(path),
        args=args,
        spec=_file(app.file_path),
        state_dir=state_dir,
    )


def finish(inv: Invocation, exit_code: int, error: BaseException | None) -> None:
    """Record the outcome. Raises AuditError when the entry could not be written."""
    from datetime import UTC, datetime

    from hosting.audit import log

    fields = {
        "time": _stamp(datetime.now(UTC)),
        "started": _stamp(inv.started),
        "who": who(),
        "what": {"command": inv.command, "args": inv.args},
        "spec": inv.spec,
        "result": _result(exit_code, error),
    }
    try:
        log.append(log.path_in(inv.state_dir), fields)
    except OSError as exc:
        raise _unrecordable(exc) from None


def who() -> dict[str, Any]:
    """The OS user (from the password database, not the environment), the login name when it
    differs (sudo), and $HOSTING_ACTOR, which CI sets to the person or job behind the run."""
    import pwd

    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    out: dict[str, Any] = {"user": user, "uid": uid}
    try:
        login = os.getlogin()  # utmp's name for the controlling terminal
    except OSError:
        login = None
    if login and login != user:
        out["login"] = login
    actor = os.environ.get("HOSTING_ACTOR", "").strip()
    if actor:
        out["actor"] = actor[:_ACTOR_MAX]
    return out


def _asks_help(ctx: click.Context) -> bool:
    option = ctx.command.get_help_option(ctx)
    return bool(
        option is not None
        and option.name
        and ctx.get_parameter_source(option.name) is ParameterSource.COMMANDLINE
    )


def _args(ctx: click.Context) -> dict[str, Any]:
    """The parameters given on the command line (not defaults, not environment values)."""
    out: dict[str, Any] = {}
    for param in ctx.command.params:
        name = param.name
        if not name or name not in ctx.params:
            continue
        if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        if _SECRET_NAME.search(name) and not isinstance(value, bool):
            out[name] = REMOVED
        elif isinstance(param.type, click.Path) and isinstance(value, str | Path):
            out[name] = _file(Path(value))
        else:
            out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)  # dates, paths, decimals: their usual text


def _file(path: Path) -> dict[str, Any]:
    """A file by absolute path and the sha256 of its bytes now (None when it cannot be read)."""
    import hashlib

    digest: str | None
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"path": str(path.resolve()), "sha256": digest}


def _result(exit_code: int, error: BaseException | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "ok" if exit_code == 0 else "error", "exit_code": exit_code}
    message = _message(error) if exit_code != 0 else None
    if message:
        out["message"] = message
    return out


def _message(error: BaseException | None) -> str | None:
    """The error's first line, as the user saw it. Messages carry names, never secret values
    (hosting.errors' rule); an unexpected exception contributes only its type."""
    if isinstance(error, HostingError):
        text = error.message
    elif isinstance(error, click.exceptions.Abort | KeyboardInterrupt):
        text = "interrupted"
    elif isinstance(error, click.ClickException):
        text = error.format_message()
    elif isinstance(error, click.exceptions.Exit) or error is None:
        return None
    else:
        text = f"unexpected {type(error).__name__}"
    return text.splitlines()[0] if text else None


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _unrecordable(exc: OSError) -> HostingError:
    from hosting.errors import AuditError

    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    return AuditError(
        f"the audit log cannot be written: {reason}{where}",
        "every state-changing command is recorded, and none runs unrecorded: "
        "fix the state directory's permissions or space",
    )


def report(error: HostingError) -> None:
    for line in error.lines():
        click.echo(line, err=True)
    sys.stderr.flush()
