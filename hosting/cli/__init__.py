"""The command line: click commands only. Each area registers its commands from its own
module; this module owns global options and maps the exception tree to exit codes."""

from __future__ import annotations

import sys
import traceback
from datetime import UTC, datetime

import click

from hosting.cli.context import App
from hosting.errors import HostingError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    # Imported for their side effect of adding commands to `cli`.
    import importlib

    from hosting.cli import spec_commands  # noqa: F401

    for name in (
        "deploy_commands",
        "metering_commands",
        "billing_commands",
        "report_commands",
        "domain_commands",
        "backup_commands",
    ):
        try:
            importlib.import_module(f"hosting.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hosting.cli.{name}":
                raise


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns every outcome into one exit code."""
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
    except Exception as exc:  # unexpected: keep the traceback out of the user's way
        _report_unexpected(exc)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _report_unexpected(exc: Exception) -> None:
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
