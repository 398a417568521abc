"""Point-in-time recovery without Docker: reading --to-time, choosing the base backup,
what retention drops, and what the database container gains for archiving."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hosting.backups import pitr
from hosting.errors import UsageError
from hosting.spec.models import Limits
from hosting.spec.plans import DEFAULT_PLANS
from hosting.stacks.containers import database_container, write_host_files
from hosting.stacks.wal_archive import ARCHIVE_MOUNT

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:15:00Z", datetime(2026, 11, 25, 10, 15, tzinfo=UTC)),
        ("2026-11-25T10:15:00.250Z", datetime(2026, 11, 25, 10, 15, 0, 250000, tzinfo=UTC)),
        ("2026-11-25T11:15:00+01:00", datetime(2026, 11, 25, 10, 15, tzinfo=UTC)),
        ("2026-11-25 10:15:00", datetime(2026, 11, 25, 10, 15, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-25T12:00:00Z", NOW),  # now itself is not the future
    ],
)
def test_target_times_read(text: str, expected: datetime) -> None:
    assert pitr.parse_target(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "25/11/2026 10:15", "2026-13-01T00:00:00Z", ""])
def test_a_target_that_is_not_iso_8601_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not an ISO-8601 time"):
        pitr.parse_target(text, NOW)


def test_a_target_in_the_future_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"2026-11-25T12:00:00.001Z is in the future"):
        pitr.parse_target("2026-11-25T12:00:00.001Z", NOW)
    with pytest.raises(UsageError, match="in the future"):
        pitr.parse_target("2026-11-25T13:00:00+00:30", NOW)  # 12:30 UTC


def _base(name: str, finished: datetime, first_wal: str) -> pitr.BaseBackup:
    return pitr.BaseBackup(
        "t", "db", name, Path(name), 1, None, finished - timedelta(minutes=1), finished, first_wal
    )


DAY = timedelta(days=1)
B1 = _base("b1", NOW - 10 * DAY, "000000010000000000000010")
B2 = _base("b2", NOW - 6 * DAY, "000000010000000000000030")
B3 = _base("b3", NOW - 2 * DAY, "000000020000000000000050")


def test_the_newest_base_backup_finished_before_the_target_is_chosen() -> None:
    bases = [B3, B1, B2]  # any order on disk
    assert pitr.choose_base(bases, NOW) == B3
    assert pitr.choose_base(bases, B3.finished + timedelta(microseconds=1)) == B3
    assert pitr.choose_base(bases, B3.finished) == B2  # not consistent before it finished
    assert pitr.choose_base(bases, NOW - 7 * DAY) == B1
    assert pitr.choose_base(bases, B1.finished) is None
    assert pitr.choose_base([], NOW) is None


def test_retention_keeps_what_restores_to_every_moment_of_the_window() -> None:
    wal = [
        "00000001000000000000000F",  # before every base backup
        "000000010000000000000010",  # b1's first
        "000000010000000000000020",
        "000000010000000000000030",  # b2's first
        "000000020000000000000040",  # a later timeline, before b3
        "000000020000000000000050",
        "00000002.history",  # history files are never dropped
    ]
    # 5 days: b1 and b2 finished before the window; b2, the newer, restores to its start.
    gone, segments = pitr.retention([B1, B2, B3], wal, 5, NOW)
    assert [b.name for b in gone] == ["b1"]
    assert segments == [
        "00000001000000000000000F",
        "000000010000000000000010",
        "000000010000000000000020",
    ]
    # 7 days: b2 finished inside the window, so b1 is what restores to its start.
    gone, segments = pitr.retention([B1, B2, B3], wal, 7, NOW)
    assert gone == [] and segments == ["00000001000000000000000F"]
    # 11 days: every base backup is inside the window: only what precedes b1 goes.
    gone, segments = pitr.retention([B1, B2, B3], wal, 11, NOW)
    assert gone == [] and segments == ["00000001000000000000000F"]
    # 1 day: b3 alone covers it, and b3 is the newest before the window's start.
    gone, segments = pitr.retention([B1, B2, B3], wal, 1, NOW)
    assert [b.name for b in gone] == ["b1", "b2"]
    assert "000000020000000000000050" not in segments and "00000002.history" not in segments
    assert segments[-1] == "000000020000000000000040"
    # No base backup: no segment can be told unneeded.
    assert pitr.retention([], wal, 1, NOW) == ([], [])


def test_every_default_plan_has_a_retention_window_growing_with_the_tier() -> None:
    days = [DEFAULT_PLANS[p].backup_retention_days for p in ("free", "starter", "pro")]
    assert days == [1, 7, 14]
    assert DEFAULT_PLANS["enterprise"].backup_retention_days == 30


def test_the_database_container_archives_its_wal_into_a_folder_made_for_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "backups" / "t" / "db" / "wal"
    spec = database_container(
        platform="p", tenant="t", deployment="db", image="postgres:15-alpine",
        limits=Limits(cpus=1, memory_mb=256, disk_io_mbps=10, network_mbps=10),
        user="u", password="pw", host_port=5432, bind_ip="127.0.0.1",
        wal_archive_dir=str(folder),
    )  # fmt: skip
    assert [(m.target, m.source, m.kind) for m in spec.mounts][1] == (
        ARCHIVE_MOUNT, str(folder), "bind",
    )  # fmt: skip
    assert spec.command is not None
    assert spec.command[:2] == ("-c", "archive_mode=on")
    assert any(arg.startswith("archive_command=") for arg in spec.command)
    write_host_files(spec)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1777
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    plain = database_container(
        platform="p", tenant="t", deployment="db", image="postgres:15-alpine",
        limits=Limits(cpus=1, memory_mb=256, disk_io_mbps=10, network_mbps=10),
        user="u", password="pw", host_port=5432, bind_ip="127.0.0.1",
    )  # fmt: skip
    assert plain.command is None and len(plain.mounts) == 1


def test_wal_and_base_backups_count_as_the_databases_storage(tmp_path: Path) -> None:
    from hosting.metering.storage import _add_backups

    folder = tmp_path / "backups" / "t" / "db"
    (folder / "wal").mkdir(parents=True)
    (folder / "base").mkdir()
    (folder / "wal" / "000000010000000000000001.gz").write_bytes(b"w" * 700)
    (folder / "wal" / "000000010000000000000001.gz.sha256").write_bytes(b"s" * 90)
    (folder / "base" / "20261125T101500.000Z.base").write_bytes(b"b" * 3000)
    (folder / "20261125T101500.000Z.dump").write_bytes(b"d" * 200)
    added: list[tuple[str, str, str, int, int | None]] = []
    _add_backups([], lambda *row: added.append(row), "t", "db", folder)
    assert added == [("t", "db", "database", 700 + 90 + 3000 + 200, 4)]
