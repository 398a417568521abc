"""Store commands: store check, store snapshot, store list, store restore."""

from __future__ import annotations

from typing import Any

import click

from hosting.cli import cli
from hosting.cli.context import App
from hosting.cli.output import echo_json, human_bytes, json_option, table, to_jsonable
from hosting.errors import StoreError
from hosting.store import damage, snapfiles
from hosting.store.check import check
from hosting.store.snapfiles import Snapshot
from hosting.store.snapshots import restore, take

pass_app = click.make_pass_decorator(App)


def _snapshot_json(s: Snapshot | None) -> Any:
    if s is None:
        return None
    return {"name": s.name, "path": str(s.path), "size_bytes": s.size_bytes,
            "taken": to_jsonable(s.taken)}  # fmt: skip


def _when(s: Snapshot) -> str:
    return f"{s.taken:%Y-%m-%d %H:%M:%S} UTC"


@cli.group()
def store() -> None:
    """The DuckDB store: check it, or restore a snapshot.

    Snapshots (`store snapshot`, and daily by the metering agent) are copies of the store
    taken under its write lock, in STATE_DIR/backups/_store/ with a sha256 file each; the
    newest 7 are kept.
    """


@store.command("check")
@json_option
@pass_app
def check_cmd(app: App, as_json: bool) -> None:
    """Verify that the store opens and reads back, that its migrations are complete, that
    invoice and credit note numbers are gapless and that every invoice has its sealed
    document with the amount as issued. Exit 1 on any failure."""
    report = check(app.store_path)
    if as_json:
        echo_json(
            {
                "store": str(report.store),
                "ok": report.ok,
                "checks": [to_jsonable(f) for f in report.findings],
                "newest_snapshot": _snapshot_json(report.newest_snapshot),
            }
        )
    else:
        click.echo(f"store {report.store}")
        for f in report.findings:
            click.echo(f"  {'ok' if f.ok else 'FAILED':<7}{f.name:<17}{f.detail}")
        snap = report.newest_snapshot
        newest = f"{snap.path} ({_when(snap)})" if snap else "none"
        click.echo(f"  {'':<7}{'newest snapshot':<17}{newest}")
    if not report.ok:
        if not report.findings[0].ok:
            raise StoreError("store check failed: the store does not open",
                             damage.restore_hint(report.store))  # fmt: skip
        failed = [f.name for f in report.findings if not f.ok]
        raise StoreError(f"store check failed: {', '.join(failed)}")


@store.command("snapshot")
@click.option(
    "--keep",
    type=click.IntRange(1, 10000),
    default=snapfiles.DEFAULT_KEEP,
    show_default=True,
    help="Snapshots to keep (the oldest beyond are removed).",
)
@json_option
@pass_app
def snapshot_cmd(app: App, keep: int, as_json: bool) -> None:
    """Take a consistent snapshot of the store now (the agent takes one daily)."""
    taken = take(app.store_path, keep=keep)
    if as_json:
        echo_json(
            {
                "snapshot": _snapshot_json(taken.snapshot),
                "sha256": taken.sha256,
                "removed": list(taken.removed),
            }
        )
        return
    s = taken.snapshot
    extra = f"; removed {len(taken.removed)} older" if taken.removed else ""
    click.echo(f"{s.path} ({human_bytes(s.size_bytes)}, sha256 {taken.sha256}){extra}")


@store.command("list")
@json_option
@pass_app
def list_cmd(app: App, as_json: bool) -> None:
    """Snapshots on disk, oldest first."""
    found = snapfiles.list_snapshots(app.store_path)
    if as_json:
        echo_json({"snapshots": [_snapshot_json(s) for s in found]})
        return
    if not found:
        click.echo(f"no snapshots in {snapfiles.snapshot_dir(app.store_path)}")
        return
    rows = [[s.name, human_bytes(s.size_bytes), _when(s)] for s in found]
    click.echo(table(["snapshot", "size", "taken"], rows, right=[1]))


@store.command("restore")
@click.argument("snapshot")
@click.option("--yes", is_flag=True, help="Restore; without it, say what would be done.")
@pass_app
def restore_cmd(app: App, snapshot: str, yes: bool) -> None:
    """Restore SNAPSHOT (a name from `store list`, a path, or `latest`) in place of the store.

    Its checksum is verified first; the current store file is kept aside, renamed, never
    deleted. Stop the agent first: a process holding the store makes it refuse.
    """
    done = restore(app.store_path, snapshot, confirmed=yes)
    click.echo(f"restored {done.store} from {done.snapshot.path} (sha256 {done.sha256})")
    if done.aside is not None:
        click.echo(f"the previous store ({done.current}) is kept as {done.aside}")
