"""Backup commands: backup run, backup list, backup drill, backup restore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hosting.backups import BackupFile, BackupOutcome, backup_all, backup_one, list_backups
from hosting.backups import restore as restore_backup
from hosting.backups.pg import DEFAULT_KEEP, database_deployment
from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, human_bytes, json_option, table, to_jsonable
from hosting.errors import HostingError, UsageError
from hosting.spec.limits import tenant_or_error

if TYPE_CHECKING:
    from hosting.backups.drills import DrillResult

pass_app = click.make_pass_decorator(App)


def _split(ref: str | None) -> tuple[str | None, str | None]:
    if not ref:
        return None, None
    tenant, _, deployment = ref.partition("/")
    if not tenant or "/" in deployment:
        raise UsageError(f"`{ref}` is not TENANT or TENANT/DEPLOYMENT")
    return tenant, deployment or None


def _file_json(b: BackupFile | None) -> Any:
    if b is None:
        return None
    return {
        "tenant": b.tenant,
        "deployment": b.deployment,
        "name": b.name,
        "path": str(b.path),
        "size_bytes": b.size_bytes,
        "sha256": b.sha256,
        "started": to_jsonable(b.started) if b.started else None,
        "finished": to_jsonable(b.finished) if b.finished else None,
        "pg_version": b.pg_version,
    }


def _outcome_json(o: BackupOutcome) -> dict[str, Any]:
    return {
        "tenant": o.tenant,
        "deployment": o.deployment,
        "ok": o.ok,
        "skipped": o.skipped,
        "error": o.error,
        "file": _file_json(o.file),
        "removed": list(o.removed),
        "offsite": o.offsite,
    }


@cli.group()
def backup() -> None:
    """PostgreSQL backups of database deployments (STATE_DIR/backups/)."""


@backup.command("run")
@click.argument("ref", metavar="[TENANT[/DEPLOYMENT]]", required=False)
@click.option("--keep", type=click.IntRange(1, 10000), default=DEFAULT_KEEP, show_default=True,
              help="Backups to keep per deployment (the oldest beyond are removed).")  # fmt: skip
@json_option
@pass_app
def run_cmd(app: App, ref: str | None, keep: int, as_json: bool) -> None:
    """Back up one database deployment, a tenant's, or every one in the file (pg_dump -Fc)."""
    tenant, deployment = _split(ref)
    spec = app.spec
    spec_dir = app.file_path.resolve().parent
    if deployment is not None and tenant is not None:
        try:
            outcomes = [
                backup_one(spec, app.state_dir, tenant, deployment, keep=keep, spec_dir=spec_dir)
            ]
        except HostingError as exc:
            if not as_json:
                raise
            outcomes = [BackupOutcome(tenant, deployment, False, error=exc.message)]
    else:
        outcomes = backup_all(spec, app.state_dir, tenant=tenant, keep=keep, spec_dir=spec_dir)
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        echo_json({"backups": [_outcome_json(o) for o in outcomes]})
    else:
        if not outcomes:
            click.echo("no database deployments to back up")
        for o in outcomes:
            where = f"{o.tenant}/{o.deployment}"
            if o.skipped:
                click.echo(f"{where}: skipped ({o.error})")
            elif o.file is not None:
                extra = f"; removed {len(o.removed)} older" if o.removed else ""
                if o.offsite:
                    extra += f"; copied off-host to {o.offsite}"
                click.echo(f"{where}: {o.file.path} ({human_bytes(o.file.size_bytes)}){extra}")
        for o in failed:
            click.echo(f"error: {o.tenant}/{o.deployment}: {o.error}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


@backup.command("list")
@click.argument("ref", metavar="[TENANT[/DEPLOYMENT]]", required=False)
@json_option
@pass_app
def list_cmd(app: App, ref: str | None, as_json: bool) -> None:
    """Backups on disk, oldest first per deployment."""
    tenant, deployment = _split(ref)
    # The same refusals as `backup run`: an empty list must mean "none yet", not "no such".
    if tenant is not None and deployment is not None:
        database_deployment(app.spec, tenant, deployment)
    elif tenant is not None:
        tenant_or_error(app.spec, tenant)
    from hosting.backups import drills  # DuckDB and the stack's images: only when listing
    from hosting.cli import pitr_commands  # base backups and WAL (point-in-time recovery)

    found = list_backups(app.state_dir, tenant, deployment)
    drilled = drills.latest_by_backup(app.store_path, tenant)
    drill_of = {b.name: drilled.get((b.tenant, b.deployment, b.name)) for b in found}
    if as_json:
        echo_json(
            {
                "backups": [
                    {**_file_json(b), "restore_drill": _drill_json(drill_of[b.name])} for b in found
                ],
                **pitr_commands.list_json(app.spec, app.state_dir, tenant, deployment),
            }
        )
        return
    if not found:
        click.echo("no backups")
        pitr_commands.echo_list(app.spec, app.state_dir, tenant, deployment)
        return
    rows = [
        [
            f"{b.tenant}/{b.deployment}",
            b.name,
            human_bytes(b.size_bytes),
            to_jsonable(b.finished) if b.finished else "-",
            b.pg_version or "-",
            drills.describe(drill_of[b.name]),
        ]
        for b in found
    ]
    headers = ["deployment", "file", "size", "finished", "postgres", "restore drill"]
    click.echo(table(headers, rows, right=[2]))
    pitr_commands.echo_list(app.spec, app.state_dir, tenant, deployment)


def _drill_json(d: DrillResult | None) -> Any:
    if d is None:
        return None  # never restored
    return {
        "ok": d.ok,
        "reason": d.reason,
        "started": to_jsonable(d.started),
        "finished": to_jsonable(d.finished),
        "seconds": d.seconds,
        "tables_checked": d.tables_checked,
        "rows_checked": d.rows_checked,
    }


@backup.command("drill")
@click.argument("ref", metavar="[TENANT[/DEPLOYMENT]]", required=False)
@json_option
@pass_app
def drill_cmd(app: App, ref: str | None, as_json: bool) -> None:
    """Restore drill now: the newest backup of each database (of a tenant, or one) restored
    into a throwaway container with no network, row counts compared with those taken at
    backup time, the container removed. Recorded like the agent's. Exit 1 if one failed."""
    from hosting.backups import drills

    tenant, deployment = _split(ref)
    if tenant is not None and deployment is not None:
        database_deployment(app.spec, tenant, deployment)
        found = list_backups(app.state_dir, tenant, deployment)
        if not found:
            raise UsageError(
                f"{tenant}/{deployment} has no backup to drill", "run `hosting backup run` first"
            )
        results = [drills.drill_one(app.spec, app.state_dir, found[-1])]
        drills.record(app.store_path, results[0])
    else:
        results = drills.drill_all(app.spec, app.state_dir, app.store_path, tenant=tenant)
    if as_json:
        echo_json(
            {
                "drills": [
                    {"tenant": r.tenant, "deployment": r.deployment, "backup": r.backup,
                     **_drill_json(r)}
                    for r in results
                ]
            }
        )  # fmt: skip
    else:
        if not results:
            click.echo("no backups to drill")
        for r in results:
            click.echo(f"{r.tenant}/{r.deployment} {r.backup}: {drills.describe(r)}")
    if any(not r.ok for r in results):
        raise click.exceptions.Exit(1)


@backup.command("restore")
@click.argument("ref", metavar="TENANT/DEPLOYMENT")
@click.argument("file", required=False)
@click.option("--to-time", "to_time", metavar="TIME",
              help="Point-in-time restore to TIME (ISO-8601, UTC unless it says): base backup"
              " plus WAL into a new data directory, swapped in once it answers.")  # fmt: skip
@click.option("--yes", is_flag=True, help="Really replace the database's current contents.")
@pass_app
def restore_cmd(app: App, ref: str, file: str | None, to_time: str | None, yes: bool) -> None:
    """Restore FILE (a path, a name from `backup list`, or `latest`) into the database:
    pg_restore --clean --if-exists in one transaction; or, with --to-time and no FILE, the
    whole server as it was at TIME. Refuses without --yes."""
    tenant, deployment = _split(ref)
    if tenant is None or deployment is None:
        raise UsageError(f"`{ref}` is not TENANT/DEPLOYMENT")
    if to_time is not None or file is None:
        if file is not None or to_time is None:
            raise UsageError("give either FILE (a dump) or --to-time TIME, not both nor neither")
        from hosting.cli import pitr_commands

        pitr_commands.restore_to_time(app, tenant, deployment, to_time, yes)
        return
    path = restore_backup(app.spec, app.state_dir, tenant, deployment, file, confirmed=yes)
    click.echo(f"{tenant}/{deployment}: restored from {path}")


# `backup base` and `backup prune` (point-in-time recovery) register on the group above.
from hosting.cli import pitr_commands as _pitr_commands  # noqa: E402, F401
