"""Where a drill's result shows, without Docker: `backup list` (each file's own newest drill,
"never restored" otherwise), the status lines and the usage report's Backups section."""

from __future__ import annotations

import html
import json
from datetime import date, datetime
from pathlib import Path

from hosting.backups import drills
from hosting.backups.files import deployment_dir
from hosting.reports import api
from hosting.spec import load
from tests.conftest import run_hosting
from tests.metering.helpers import write_spec

OLD, NEW = "20261120T010000.000Z.dump", "20261121T010000.000Z.dump"


def _drill(
    deployment: str, backup: str, day: int, ok: bool, reason: str | None = None
) -> drills.DrillResult:
    start = datetime(2026, 11, day, 2, 0, 0)
    return drills.DrillResult(
        "acme", deployment, backup, start, start.replace(second=12), 12.0, ok, reason,
        3 if ok else 0, 1500 if ok else 0,
    )  # fmt: skip


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    spec_file = write_spec(
        tmp_path,
        {"acme": {"main": {"type": "database"}, "audit": {"type": "database"},
                  "site": {"type": "web", "image": "x", "port": 8080}}},
    )  # fmt: skip
    state = tmp_path / "state"
    for name in (OLD, NEW):
        folder = deployment_dir(state, "acme", "main")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"HSTBKENC-not-really")
        (folder / name).with_suffix(".json").write_text(
            json.dumps({"finished": name[:8] + "T01:00:05.000Z"})
        )
    store = state / "hosting.duckdb"
    drills.record(store, _drill("main", OLD, 21, True))
    drills.record(store, _drill("main", OLD, 22, False, "table public.t has 1 rows restored, 2"))
    drills.record(store, _drill("main", NEW, 23, True))
    return spec_file, state


def test_backup_list_shows_each_files_newest_drill_or_never(tmp_path: Path) -> None:
    spec_file, state = _setup(tmp_path)
    args = ("-f", str(spec_file), "--state-dir", str(state), "backup", "list", "acme")
    listed = run_hosting(*args, "--json")
    assert listed.returncode == 0, listed.stderr
    found = {b["name"]: b["restore_drill"] for b in json.loads(listed.stdout)["backups"]}
    assert found[OLD]["ok"] is False  # its newest drill failed, the older ok one is history
    assert found[OLD]["reason"] == "table public.t has 1 rows restored, 2"
    assert found[NEW]["ok"] is True and found[NEW]["rows_checked"] == 1500
    text = run_hosting(*args).stdout
    assert "restore FAILED 2026-11-22 02:00Z: table public.t" in text
    assert "restored ok 2026-11-23 02:00Z (3 tables, 12 s)" in text

    # A new backup, not drilled yet: never restored, whatever its elders went through.
    newest = deployment_dir(state, "acme", "main") / "20261124T010000.000Z.dump"
    newest.write_bytes(b"HSTBKENC-not-really")
    text = run_hosting(*args).stdout
    line = next(ln for ln in text.splitlines() if newest.name in ln)
    assert line.split("|")[-2].strip() == "never restored"


def test_status_lines_name_the_newest_backup_and_drill(tmp_path: Path) -> None:
    spec_file, state = _setup(tmp_path)
    spec = load(spec_file)
    states = drills.backup_states(spec, state, state / "hosting.duckdb", ["acme"])
    assert [s.line() for s in states] == [
        "backup: acme/main: newest 2026-11-21 01:00Z; "
        "restored ok 2026-11-23 02:00Z (3 tables, 12 s)",
        "backup: acme/audit: no backup yet",
    ]
    newest = deployment_dir(state, "acme", "main") / "20261124T010000.000Z.dump"
    newest.write_bytes(b"HSTBKENC-not-really")
    (line, _) = [s.line() for s in drills.backup_states(spec, state, state / "x.duckdb", ["acme"])]
    assert line.endswith("never restored")  # no store, no drill
    (line, _) = [
        s.line() for s in drills.backup_states(spec, state, state / "hosting.duckdb", ["acme"])
    ]
    assert line.endswith(f"(of the older {NEW})")


def test_the_usage_report_has_a_backups_section(tmp_path: Path) -> None:
    spec_file, state = _setup(tmp_path)
    drills.record(state / "hosting.duckdb", _drill("main", NEW, 24, False, "pg_restore failed"))
    page = api.usage_html(load(spec_file), state / "hosting.duckdb", "acme", date(2026, 11, 25))
    section = page[page.index("<h2>Backups</h2>") : page.index("<h2>Health</h2>")]
    rows = [html.unescape(r) for r in section.split("<tr>")[2:]]
    assert (
        "<td>main</td>" in rows[0]
        and "restore FAILED 2026-11-24 02:00Z: pg_restore failed" in rows[0]
    )
    assert "<td>audit</td>" in rows[1] and "never restored" in rows[1]
    assert "site" not in section
