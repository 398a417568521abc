"""`hosting report invoice|usage|platform`: self-contained HTML files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import as_of_option as _as_of_option
from hosting.cli.output import echo_json, json_option
from hosting.dates import as_of_day
from hosting.errors import UsageError
from hosting.reports import api

pass_app = click.make_pass_decorator(App)

output_option = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    metavar="FILE",
    help="Where to write the HTML ('-' for standard output).",
)
as_of_option = _as_of_option(
    "Report as of the end of this UTC day (YYYY-MM-DD; not after today) [default: today]."
)


def _check_output(output: str, as_json: bool) -> None:
    """`--json` describes the file written; with `-o -` the HTML itself is standard output,
    so the two cannot share it. Refused before any work, rather than one silently losing."""
    if output == "-" and as_json:
        raise UsageError(
            "`-o -` and `--json` both write to standard output",
            "write the HTML to a file (-o FILE) to get the JSON summary, or drop --json",
        )


def _write(html: str, output: str, kind: str, as_json: bool, **info: object) -> None:
    if output == "-":
        click.echo(html, nl=False)
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    if as_json:
        echo_json({"report": kind, "file": str(path), "bytes": len(html.encode()), **info})
    else:
        click.echo(f"wrote {kind} report to {path}")


@cli.group()
def report() -> None:
    """HTML invoices and usage reports: one file each, nothing fetched when opened."""


@report.command("invoice")
@click.argument("number")
@click.option(
    "--pdf", is_flag=True, help="Write a one-page A4 PDF (headless Chromium) instead of HTML."
)
@output_option
@json_option
@pass_app
def report_invoice(app: App, number: str, pdf: bool, output: str, as_json: bool) -> None:
    """Render invoice NUMBER (INV-YYYYMMDD-NNNNNN), print-ready on one page."""
    _check_output(output, as_json)
    html = api.invoice_html(app.spec, app.store_path, number)
    if not pdf:
        _write(html, output, "invoice", as_json, invoice_number=number)
        return
    from hosting.reports.pdf import write_pdf

    size = write_pdf(html, output)
    if as_json:
        echo_json({"report": "invoice", "file": output, "bytes": size, "invoice_number": number})
    else:
        click.echo(f"wrote invoice PDF to {output}")


@report.command("usage")
@click.argument("tenant")
@as_of_option
@output_option
@json_option
@pass_app
def report_usage(app: App, tenant: str, as_of: date | None, output: str, as_json: bool) -> None:
    """Usage of TENANT in its billing period: charts, storage, health, alerts, projection."""
    _check_output(output, as_json)
    day = as_of_day(as_of)
    html = api.usage_html(app.spec, app.store_path, tenant, day)
    _write(html, output, "usage", as_json, tenant=tenant, as_of=day)


@report.command("platform")
@as_of_option
@output_option
@json_option
@pass_app
def report_platform(app: App, as_of: date | None, output: str, as_json: bool) -> None:
    """The operator's report: revenue by plan, tenants near limits, top consumers."""
    _check_output(output, as_json)
    day = as_of_day(as_of)
    html = api.platform_html(app.spec, app.store_path, day)
    _write(html, output, "platform", as_json, as_of=day)
