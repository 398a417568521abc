"""Point-in-time recovery commands, on the `backup` group: backup base, backup prune, and
what `backup list` and `backup restore --to-time` add (hosting/backups/pitr*.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hosting.backups import pitr, wal_seal
from hosting.backups.pg import database_deployment
from hosting.cli.backup_commands import _split, backup, pass_app
from hosting.cli.context import App
from hosting.cli.output import echo_json, human_bytes, json_option, table
from hosting.errors import HostingError, UsageError
from hosting.spec.limits import tenant_or_error
from hosting.spec.models import BackupS3, DatabaseDeployment, Spec


def _databases(spec: Spec, tenant: str | None, deployment: str | None) -> list[tuple[str, str]]:
    if tenant is not None and deployment is not None:
        database_deployment(spec, tenant, deployment)
        return [(tenant, deployment)]
    if tenant is not None:
        tenant_or_error(spec, tenant)
    return [
        (tid, did)
        for tid, t in spec.tenants.items()
        if tenant is None or tid == tenant
        for did, dep in t.deployments.items()
        if isinstance(dep, DatabaseDeployment)
    ]


def list_json(spec: Spec, state_dir: Path, tenant: str | None, deployment: str | None) -> Any:
    bases, wal = [], []
    for tid, did in _databases(spec, tenant, deployment):
        for b in pitr.list_bases(state_dir, tid, did):
            bases.append(
                {"tenant": tid, "deployment": did, "name": b.name, "path": str(b.path),
                 "size_bytes": b.size_bytes, "sha256": b.sha256, "started": pitr.iso(b.started),
                 "finished": pitr.iso(b.finished), "first_wal": b.first_wal,
                 "pg_version": b.pg_version}
            )  # fmt: skip
        s = pitr.archive_summary(state_dir, tid, did)
        wal.append(
            {"tenant": tid, "deployment": did, "segments": s.segments, "size_bytes": s.size_bytes,
             "oldest": s.oldest, "newest": s.newest,
             "retention_days": pitr.retention_days(spec, tid)}
        )  # fmt: skip
    return {"base_backups": bases, "wal_archive": wal}


def echo_list(spec: Spec, state_dir: Path, tenant: str | None, deployment: str | None) -> None:
    """The base backups and WAL archives, after the dumps' table."""
    rows, archives = [], []
    for tid, did in _databases(spec, tenant, deployment):
        bases = pitr.list_bases(state_dir, tid, did)
        s = pitr.archive_summary(state_dir, tid, did)
        rows += [
            [f"{tid}/{did}", b.name, human_bytes(b.size_bytes), pitr.iso(b.finished)] for b in bases
        ]
        if bases or s.segments:
            since = pitr.iso(bases[0].finished) if bases else "no base backup yet"
            archives.append(
                f"{tid}/{did}: WAL archive {s.segments} segments ({human_bytes(s.size_bytes)}),"
                f" restorable since {since}; kept {pitr.retention_days(spec, tid)} days"
            )
    if rows:
        click.echo("")
        click.echo("base backups (point-in-time recovery):")
        click.echo(table(["deployment", "file", "size", "consistent from"], rows, right=[2]))
    for line in archives:
        click.echo(line)


def restore_to_time(app: App, tenant: str, deployment: str, text: str, yes: bool) -> None:
    from hosting.backups.pitr_restore import restore_to_time as restore

    target = pitr.parse_target(text, datetime.now(UTC))
    done = restore(app.spec, app.state_dir, tenant, deployment, target, confirmed=yes)
    click.echo(
        f"{tenant}/{deployment}: restored to {pitr.iso(target)} from base backup {done.base};"
        f" the previous data directory is kept as {done.previous} until `backup prune`"
        + (
            f"; {', '.join(done.replicas)} cloned again from it and streaming"
            if done.replicas
            else ""
        )
    )


@backup.command("base")
@click.argument("ref", metavar="[TENANT[/DEPLOYMENT]]", required=False)
@json_option
@pass_app
def base_cmd(app: App, ref: str | None, as_json: bool) -> None:
    """Base backup now (pg_basebackup) of one database, a tenant's, or every one; then its
    archived WAL sealed, the plan's retention (backup_retention_days) for base backups and
    WAL, and with platform.backups.s3 the off-host copy, its retention applied too. Exit 1
    if one failed."""
    tenant, deployment = _split(ref)
    outcomes = []
    for tid, did in _databases(app.spec, tenant, deployment):
        if app.spec.tenants[tid].deployments[did].stopped:
            continue
        try:
            made = pitr.base_backup(app.spec, app.state_dir, tid, did)
            sealed = wal_seal.seal(app.state_dir, tid, did).sealed
            gone, wal = pitr.prune(app.state_dir, tid, did, pitr.retention_days(app.spec, tid))
        except HostingError as exc:
            outcomes.append(pitr.BaseOutcome(tid, did, False, error=exc.message))
            continue
        done = pitr.BaseOutcome(tid, did, True, made, (*gone, *wal), sealed=tuple(sealed))
        outcomes.append(_copied(app, done))
    if as_json:
        echo_json(
            {"base_backups": [
                {"tenant": o.tenant, "deployment": o.deployment, "ok": o.ok, "error": o.error,
                 "name": o.backup.name if o.backup else None, "pruned": list(o.pruned),
                 "wal_sealed": len(o.sealed), "offsite": list(o.offsite),
                 "offsite_pruned": list(o.offsite_pruned)}
                for o in outcomes
            ]}
        )  # fmt: skip
    else:
        for o in outcomes:
            if o.backup is not None:
                extra = f"; pruned {len(o.pruned)} old files" if o.pruned else ""
                extra += f"; sealed {len(o.sealed)} WAL files" if o.sealed else ""
                extra += f"; copied {len(o.offsite)} files off-host" if o.offsite else ""
                extra += (
                    f"; removed {len(o.offsite_pruned)} off-host files" if o.offsite_pruned else ""
                )
                click.echo(
                    f"{o.tenant}/{o.deployment}: {o.backup.path}"
                    f" ({human_bytes(o.backup.size_bytes)}){extra}"
                )
            if not o.ok:
                click.echo(f"error: {o.tenant}/{o.deployment}: {o.error}", err=True)
    if any(not o.ok for o in outcomes):
        raise click.exceptions.Exit(1)


def _copied(app: App, done: pitr.BaseOutcome) -> pitr.BaseOutcome:
    """The base backups and sealed WAL the bucket lacks, copied (platform.backups.s3); a
    failed copy keeps everything local and makes the outcome fail, as for dumps."""
    s3 = app.spec.platform.backups.s3 if app.spec.platform.backups else None
    if s3 is None:
        return done
    from hosting.backups import offsite

    try:
        sent = offsite.sync_pitr(
            s3, app.file_path.resolve().parent, app.state_dir, done.tenant, done.deployment
        )
    except HostingError as exc:
        return replace(done, ok=False, error=f"base backup made, not off-host: {exc.message}")
    try:
        gone = _prune_offsite(app, done.tenant, done.deployment)
    except HostingError as exc:
        return replace(done, ok=False, offsite=tuple(sent),
                       error=f"copied off-host, its retention failed: {exc.message}")  # fmt: skip
    return replace(done, offsite=tuple(sent), offsite_pruned=tuple(gone))


def _s3(app: App) -> BackupS3 | None:
    return app.spec.platform.backups.s3 if app.spec.platform.backups else None


def _prune_offsite(app: App, tenant: str, deployment: str) -> list[str]:
    """The plan's window applied to the off-host copy (offsite_retention); [] without one."""
    s3 = _s3(app)
    if s3 is None:
        return []
    from hosting.backups.offsite_retention import prune_remote

    days = pitr.retention_days(app.spec, tenant)
    return prune_remote(s3, app.file_path.resolve().parent, tenant, deployment, days)


@backup.command("prune")
@click.argument("ref", metavar="TENANT/DEPLOYMENT")
@click.option("--yes", is_flag=True, help="Really delete the data directories kept aside.")
@pass_app
def prune_cmd(app: App, ref: str, yes: bool) -> None:
    """Apply the plan's retention to base backups and WAL now (and, with
    platform.backups.s3, to the off-host copy's base backups, dumps and WAL), and delete the
    data directories a point-in-time restore kept aside (`…before-<time>`) and the volumes
    (with their old WAL archive and base backups) a major upgrade retired."""
    from hosting.backups.pitr_restore import drop_kept
    from hosting.databases.upgrade_run import prune as drop_retired

    tenant, deployment = _split(ref)
    if tenant is None or deployment is None:
        raise UsageError(f"`{ref}` is not TENANT/DEPLOYMENT")
    database_deployment(app.spec, tenant, deployment)
    if not yes:
        raise UsageError(
            f"pruning {ref} deletes the data directories earlier restores kept aside"
            " and the volumes major upgrades retired",
            "add --yes to go ahead",
        )
    days = pitr.retention_days(app.spec, tenant)
    gone, wal = pitr.prune(app.state_dir, tenant, deployment, days)
    remote = _prune_offsite(app, tenant, deployment)
    dropped = drop_kept(app.spec, tenant, deployment)
    retired = drop_retired(app.spec, app.state_dir, tenant, deployment)
    click.echo(
        f"{ref}: removed {len(gone)} base backups, {len(wal)} WAL segments"
        f" (not needed for the last {days} days), {len(dropped)} kept data directories"
        + (f" ({', '.join(dropped)})" if dropped else "")
        + (f", {len(remote)} off-host files" if _s3(app) else "")
        + (f", retired volumes {', '.join(retired)}" if retired else "")
    )
