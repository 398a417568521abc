"""The command line: click commands only. Each area registers its commands from its own
module, loaded only when one of its commands runs; this module owns global options, the map
of commands to modules, and maps the exception tree to exit codes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from gettext import gettext

import click

from hosting.cli.context import App
from hosting.errors import HostingError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130

# Each command's module under hosting.cli, and its help up to the end of the first sentence
# (all that `hosting --help` shows). CI runs the CLI many times per job, and the modules pull
# in duckdb, jinja2, dnspython and pulumi: `--help` lists commands from here and imports none,
# and a command imports only its own module. tests/cli/test_lazy_commands.py holds this map
# to the modules' own words.
COMMANDS: dict[str, tuple[str, str]] = {
    "agent": (
        "metering_commands",
        "Run the metering agent: metrics, health, storage on their schedules, until stopped.",
    ),
    "apply": (
        "deploy_commands",
        "Make the spec real; refuses when a tenant is over a plan limit or at ≥ 100% storage.",
    ),
    "audit": (
        "audit_commands",
        "The audit log: who ran which state-changing command, when, and with what result.",
    ),
    "backup": (
        "backup_commands",
        "PostgreSQL backups of database deployments (STATE_DIR/backups/).",
    ),
    "can-deploy": ("spec_commands", "Whether TENANT may add a deployment of TYPE; if not, why."),
    "credentials": (
        "deploy_commands",
        "Database connection settings (the password only with --show-secrets).",
    ),
    "destroy": ("deploy_commands", "Remove what apply made; volumes stay unless --delete-data."),
    "diff": (
        "deploy_commands",
        "Drift: what changed on the engine since the last apply (state left unchanged).",
    ),
    "domains": (
        "domain_commands",
        "Custom domains: DNS records to create, verification and certificate state.",
    ),
    "db": ("db_commands", "Databases' read replicas: promote one."),
    "engine": (
        "deploy_commands",
        "The Pulumi engine that plan and apply drive: build it from Go modules, or install it.",
    ),
    "init": ("spec_commands", "Write a commented starter hosting.yaml."),
    "invoice": (
        "billing_commands",
        "Invoices: run, list, show, mark, credit, send, collect, refund.",
    ),
    "logs": (
        "deploy_commands",
        "App logs of every replica (prefixed by replica), or the build log.",
    ),
    "meter": (
        "metering_commands",
        "The metering agent: `meter --once` runs one cycle of every collector and of the WAL "
        "job, and the database backups and restore drills when they are due (--backup-interval, "
        "--drill-interval after the newest; 0 disables); `meter` alone runs the agent like "
        "`hosting agent`.",
    ),
    "metrics": ("metering_commands", "Metrics history of a deployment (getMetrics)."),
    "payments": (
        "payments_commands",
        "Stripe: the webhook endpoint and dunning (retries, reminders, suspension).",
    ),
    "plan": (
        "deploy_commands",
        "Preview: changes per resource, grouped by tenant and deployment, with plan usage and "
        "cost impact.",
    ),
    "plans": (
        "spec_commands",
        "The plan catalog (the product document's table, with the file's overrides).",
    ),
    "refresh": (
        "deploy_commands",
        "Read the real state of containers, networks and volumes back into the stack.",
    ),
    "report": (
        "report_commands",
        "HTML invoices and usage reports: one file each, nothing fetched when opened.",
    ),
    "schema": ("spec_commands", "Print the JSON Schema of hosting.yaml (for editors and linters)."),
    "secrets": (
        "secrets_commands",
        "The stack's secrets: rotate a database's password, change the passphrase.",
    ),
    "show": (
        "deploy_commands",
        "Print a saved plan (`plan --out FILE`) again, as text, JSON or Markdown.",
    ),
    "status": (
        "deploy_commands",
        "Deployments: status (pending, building, running, stopped, suspended, failed), health, "
        "URLs, alerts.",
    ),
    "storage": (
        "metering_commands",
        "Storage by deployment and type, the tenant's total and the plan's limit.",
    ),
    "store": (
        "store_commands",
        "The DuckDB store: check it, or restore a snapshot.",
    ),
    "subscription": ("billing_commands", "A tenant's subscription, or record the file's changes."),
    "usage": (
        "billing_commands",
        "The current period's usage (storage, bandwidth, included) and projected cost.",
    ),
    "validate": ("spec_commands", "Check the file; print tenants, deployments and plan usage."),
}


def _present(module: str) -> bool:
    # A module still being written on a branch may be absent: its commands are then not offered.
    return importlib.util.find_spec(f"hosting.cli.{module}") is not None


class LazyGroup(click.Group):
    """click's lazy group: command modules register their commands on `cli` when imported,
    and are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        mapped = {name for name, (module, _) in COMMANDS.items() if _present(module)}
        return sorted(mapped | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if cmd_name in COMMANDS:
                self._import(COMMANDS[cmd_name][0])
            else:  # a command the map does not name yet (or a typo) still finds its module
                self.load_all()
        return self.commands.get(cmd_name)

    def load_all(self) -> None:
        """Import every command module (for tests and tools that walk the whole tree)."""
        for file in sorted(os.listdir(os.path.dirname(__file__))):
            if file.endswith("_commands.py"):
                self._import(file.removesuffix(".py"))

    @staticmethod
    def _import(module: str) -> None:
        importlib.import_module(f"{__name__}.{module}")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own layout, with a stand-in carrying the mapped help for each command whose
        # module is not loaded: click then shortens it exactly as it would the real one.
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section(gettext("Commands")):  # as click words it
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-f",
    "--file",
    "file",
    envvar="HOSTING_FILE",
    default="hosting.yaml",
    show_default=True,
    help="The spec file (or $HOSTING_FILE).",
)
@click.option(
    "--state-dir",
    envvar="HOSTING_STATE_DIR",
    help="State directory [default: .hosting/ beside the file].",
)
@click.option(
    "--backend",
    envvar="HOSTING_BACKEND",
    help="Pulumi backend URL [default: file:// in the state directory].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.version_option(package_name="hosting")
@click.pass_context
def cli(
    ctx: click.Context, file: str, state_dir: str | None, backend: str | None, debug: bool
) -> None:
    """Declarative web, API and PostgreSQL hosting for many tenants, from one hosting.yaml."""
    ctx.obj = App(file=file, state_dir_option=state_dir, backend=backend, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns every outcome into one exit code. A state-changing
    command (hosting.cli.auditing.AUDITED) is recorded in the audit log with that outcome."""
    from hosting.cli import auditing

    args = sys.argv[1:] if argv is None else argv
    try:
        invocation = auditing.begin(cli, args)
    except HostingError as exc:  # the log cannot take the entry: the command does not run
        auditing.report(exc)
        sys.exit(exc.exit_code)
    try:
        _run(args)
    except SystemExit as done:
        if invocation is None:
            raise
        code = done.code if isinstance(done.code, int) else EXIT_ERROR if done.code else EXIT_OK
        try:
            # _run exits from inside its `except` blocks: the error it reported is the context.
            auditing.finish(invocation, code, done.__context__)
        except HostingError as exc:
            auditing.report(exc)
            sys.exit(code or exc.exit_code)
        raise


def _run(argv: list[str]) -> None:
    try:
        code = cli.main(args=argv, prog_name="hosting", standalone_mode=False)
    except HostingError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # A bare `hosting` (or group) asks for help, as with git and docker: not an error.
        # (click >= 8.2 raises NoArgsIsHelpError; older click prints the help and exits 0.)
        no_args = type(exc).__name__ == "NoArgsIsHelpError"
        if no_args and isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
            sys.exit(EXIT_OK)
        click.echo(f"error: {exc.format_message()}", err=True)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(f"hint: see `{exc.ctx.command_path} --help`", err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        if not _report_no_access(exc):
            _report_unexpected(exc)
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # unexpected: keep the traceback out of the user's way
        _report_unexpected(exc)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _report_no_access(exc: OSError) -> bool:
    """A file the user may not write (a read-only state directory, say): one line naming it."""
    import errno

    if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not exc.filename:
        return False
    click.echo(f"error: {exc.strerror}: {exc.filename}", err=True)
    click.echo(
        "hint: apply, destroy, refresh and the metering agent write to the state directory; "
        "plan and diff only read it",
        err=True,
    )
    return True


def _report_unexpected(exc: Exception) -> None:
    import traceback  # only on this rare path: every command starts without it
    from datetime import UTC, datetime

    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(App) if ctx else None
    debug = (app.debug if app else False) or "--debug" in sys.argv
    text = "".join(traceback.format_exception(exc))
    if debug:
        click.echo(text, err=True)
    where = "the debug log"
    try:
        log = App.debug_log_path(app)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat()}\n{text}\n")
        where = str(log)
    except OSError:
        pass
    click.echo(
        f"error: unexpected {type(exc).__name__} (details in {where}; rerun with --debug)",
        err=True,
    )
