"""Point-in-time recovery on a real PostgreSQL 15 container, created exactly as apply
describes it (`database_container` with its WAL archive): rows written with timestamps, a
table dropped by mistake, the server restored to a second before; again across a base
backup boundary; failed restores leave it as it was; a killed archive run leaves nothing a
restore would take for a segment."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hosting.backups import pitr, wal_seal
from hosting.metering.agent import Agent, AgentConfig
from hosting.spec import load, names
from hosting.spec.models import Limits
from hosting.stacks.containers import database_container, write_host_files
from hosting.stacks.wal_archive import ARCHIVE_COMMAND
from tests.backups.test_offsite import s3_url as s3_url  # the moto fixture
from tests.conftest import run_hosting
from tests.metering.helpers import docker, unique, write_spec

pytestmark = pytest.mark.docker
USER = "owner"
PLATFORM = "pt"
DBNAME = names.database_name("main")
# The segment being written (pg_walfile_name would name the previous one at a boundary).
CURRENT_SEGMENT = "SELECT file_name FROM pg_walfile_name_offset(pg_current_wal_insert_lsn())"


@dataclass
class Db:
    tenant: str
    container: str
    password: str
    spec_file: Path
    state: Path
    outputs: list[str] = field(default_factory=list)

    @property
    def archive(self) -> Path:
        return pitr.archive_dir(self.state.resolve(), self.tenant, "main")

    def sql(self, statement: str, *, check: bool = True) -> str:
        return docker(
            "exec", self.container, "psql", "-h", "/tmp", "-U", USER, "-d", DBNAME,
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement, check=check,
        )  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = run_hosting(
            "-f", str(self.spec_file), "--state-dir", str(self.state), *args,
            cwd=self.spec_file.parent,
        )  # fmt: skip
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def now(self) -> datetime:
        text = self.sql("SELECT extract(epoch FROM clock_timestamp())")
        return datetime.fromtimestamp(float(text), UTC)

    def count(self, batch: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM events WHERE batch = '{batch}'"))

    def write(self, batch: str, rows: int) -> None:
        # One transaction per row: each has its own commit time in the WAL.
        for _ in range(rows):
            self.sql(f"INSERT INTO events (batch) VALUES ('{batch}')")

    def data_dirs(self) -> list[str]:
        out = docker("exec", self.container, "ls", "/var/lib/postgresql/data")
        return sorted(out.split())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(db: Db, timeout: float = 120) -> None:
    """Ready, and not the entrypoint's temporary initdb server, which answers queries too
    and then shuts down (one CI run lost its CREATE TABLE to it): the final one is PID 1."""
    deadline = time.monotonic() + timeout
    while docker("exec", db.container, "cat", "/proc/1/comm", check=False) != "postgres":
        assert time.monotonic() < deadline, docker("logs", db.container, check=False)
        time.sleep(0.5)
    while db.sql("SELECT 1", check=False) != "1":
        assert time.monotonic() < deadline, "the database did not answer"
        time.sleep(0.5)


@pytest.fixture
def db(docker_engine: str, tmp_path: Path) -> Iterator[Db]:
    tenant = unique("p")
    spec_file = write_spec(tmp_path, {tenant: {"main": {"type": "database"}}}, platform=PLATFORM)
    state = tmp_path / "state"
    password = f"Pw{secrets.token_hex(8)}PITRSECRET"
    spec = database_container(
        platform=PLATFORM, tenant=tenant, deployment="main", image="hosting-test/postgres:15",
        limits=Limits(cpus=1, memory_mb=512, disk_io_mbps=100, network_mbps=100),
        user=USER, password=password, host_port=_free_port(), bind_ip="127.0.0.1",
        wal_archive_dir=str(pitr.archive_dir(state.resolve(), tenant, "main")),
    )  # fmt: skip
    network = names.network_name(PLATFORM, tenant)
    volume = names.volume_name(PLATFORM, tenant, "main")
    docker("network", "create", network)
    try:
        write_host_files(spec)
        docker("create", *spec.docker_run_args())
        docker("start", spec.name)
        found = Db(tenant, spec.name, password, spec_file, state)
        _wait_ready(found)
        found.sql(
            "CREATE TABLE events (id serial PRIMARY KEY, batch text NOT NULL,"
            " at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        yield found
        for text in found.outputs:
            assert password not in text
    finally:
        docker("rm", "-f", "-v", spec.name, check=False)
        for c in docker("ps", "-aq", "--filter", f"label=hosting.pitr={tenant}/main").split():
            docker("rm", "-f", c, check=False)
        docker("volume", "rm", "-f", volume, check=False)
        docker("network", "rm", network, check=False)


def _base(db: Db) -> str:
    ran = db.cli("backup", "base", f"{db.tenant}/main", "--json")
    assert ran.returncode == 0, ran.stderr
    made = json.loads(ran.stdout)["base_backups"]
    assert [m["ok"] for m in made] == [True]
    return str(made[0]["name"])


def _restore(db: Db, when: datetime) -> subprocess.CompletedProcess[str]:
    stamp = when.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return db.cli("backup", "restore", f"{db.tenant}/main", "--to-time", stamp, "--yes")


def _pause() -> None:
    time.sleep(1.2)  # separates commit times; nothing is asserted about durations


def test_restore_to_a_second_before_a_dropped_table_and_across_base_backups(db: Db) -> None:
    db.write("a", 40)
    first = _base(db)
    base_file = db.state / "backups" / db.tenant / "main" / "base" / first
    assert base_file.read_bytes()[:8] == b"HSTBKENC"  # encrypted like the dumps
    db.write("b", 25)
    _pause()
    dropped_at = db.now()
    db.sql("DROP TABLE events")
    db.sql("CREATE TABLE later (x int)")
    db.sql("INSERT INTO later VALUES (1)")

    done = _restore(db, dropped_at - timedelta(seconds=1))
    assert done.returncode == 0, done.stderr
    assert f"from base backup {first}" in done.stdout
    assert (db.count("a"), db.count("b")) == (40, 25)
    assert db.sql("SELECT to_regclass('later') IS NULL") == "t"  # written after: not back
    kept = [d for d in db.data_dirs() if d.startswith("pgdata.before-")]
    assert len(kept) == 1 and "pgdata" in db.data_dirs()
    assert db.sql("SHOW archive_mode") == "on"  # the swapped-in server archives again

    # Across a base backup boundary, on the timeline the restore started.
    db.write("c", 10)
    _pause()
    between = db.now()
    _pause()
    second = _base(db)
    db.write("d", 15)
    _pause()
    after_second = db.now()
    _pause()
    db.write("e", 5)

    done = _restore(db, after_second)
    assert done.returncode == 0, done.stderr
    assert f"from base backup {second}" in done.stdout
    counts = [db.count(b) for b in "abcde"]
    assert counts == [40, 25, 10, 15, 0]

    done = _restore(db, between)
    assert done.returncode == 0, done.stderr
    assert f"from base backup {first}" in done.stdout
    counts = [db.count(b) for b in "abcde"]
    assert counts == [40, 25, 10, 0, 0]

    listed = db.cli("backup", "list", f"{db.tenant}/main", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert [b["name"] for b in body["base_backups"]] == sorted([first, second])
    assert body["wal_archive"][0]["segments"] > 0
    assert body["wal_archive"][0]["retention_days"] == 7  # the starter plan's
    text = db.cli("backup", "list", f"{db.tenant}/main")
    assert "base backups (point-in-time recovery):" in text.stdout and second in text.stdout

    pruned = db.cli("backup", "prune", f"{db.tenant}/main", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    assert "3 kept data directories" in pruned.stdout
    assert [d for d in db.data_dirs() if d.startswith("pgdata.")] == []
    assert db.count("c") == 10  # the live data is not among them


def test_failed_restores_leave_the_database_untouched(db: Db) -> None:
    db.write("a", 10)
    before_any = db.now()
    _pause()
    _base(db)
    db.write("b", 10)
    ref = f"{db.tenant}/main"

    refused = db.cli("backup", "restore", ref, "--to-time", db.now().isoformat())
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "replaces its whole data directory" in refused.stderr

    too_early = _restore(db, before_any)
    assert too_early.returncode == 1
    assert "no base backup of" in too_early.stderr and "finished before" in too_early.stderr
    assert "Traceback" not in too_early.stderr

    future = _restore(db, datetime.now(UTC) + timedelta(hours=1))
    assert future.returncode == 1 and "is in the future" in future.stderr
    garbage = db.cli("backup", "restore", ref, "--to-time", "yesterday noon", "--yes")
    assert garbage.returncode == 1 and "not an ISO-8601 time" in garbage.stderr

    # WAL missing: every segment archived after the base backup's first is deleted.
    _pause()
    target = db.now()
    current = db.sql(CURRENT_SEGMENT)  # a restore to target reads up to its end
    db.sql("SELECT pg_switch_wal()")
    base = pitr.list_bases(db.state, db.tenant, "main")[-1]
    _wait_archived(db, current)
    later = [
        s for s in pitr.archived_segments(db.state, db.tenant, "main")
        if pitr.SEGMENT.match(s) and s > base.first_wal
    ]  # fmt: skip
    assert later[-1] == current
    moved = db.archive.parent / "moved-away"
    moved.mkdir()
    for seg in later:  # sealed by `backup base` or not yet: every file of it
        for path in db.archive.glob(f"{seg}.gz*"):
            path.rename(moved / path.name)
    failed = _restore(db, target)
    assert failed.returncode == 1, failed.stdout
    assert "failed, the database is untouched" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) <= 2  # the error and at most its hint
    assert (db.count("a"), db.count("b")) == (10, 10)
    assert db.data_dirs() == ["pgdata"]  # no half-built copy left beside it

    # A damaged segment is refused by its checksum, not replayed: the newest, archived after
    # `backup base` sealed the archive, is still plain.
    for path in moved.iterdir():
        path.rename(db.archive / path.name)
    victim = db.archive / f"{later[-1]}.gz"
    good = victim.read_bytes()
    victim.write_bytes(gzip.compress(b"\0" * 16 * 1024 * 1024))
    damaged = _restore(db, target)
    assert damaged.returncode == 1
    assert "does not match its checksum" in damaged.stderr
    assert (db.count("a"), db.count("b")) == (10, 10)
    assert db.data_dirs() == ["pgdata"]

    # Sealed, then damaged: refused by its authentication check.
    victim.write_bytes(good)
    assert later[-1] in wal_seal.seal(db.state, db.tenant, "main").sealed
    sealed = db.archive / f"{later[-1]}{wal_seal.SEALED}"
    raw = bytearray(sealed.read_bytes())
    raw[len(raw) // 2] ^= 1
    sealed.write_bytes(bytes(raw))
    damaged = _restore(db, target)
    assert damaged.returncode == 1
    assert f"{later[-1]}.gz.enc is damaged" in damaged.stderr
    assert (db.count("a"), db.count("b")) == (10, 10)
    assert db.data_dirs() == ["pgdata"]
    assert not list(db.archive.parent.glob(".wal-opened-*"))


def _proc_with(db: Db, needle: str) -> list[str]:
    script = (
        'for p in /proc/[0-9]*; do if tr "\\0" " " < "$p/cmdline" 2>/dev/null | grep -q "$1"; '
        'then echo "${p#/proc/}"; fi; done'
    )
    return docker("exec", db.container, "sh", "-c", script, "sh", needle).split()


def test_an_archive_run_killed_midway_leaves_nothing_taken_for_a_segment(db: Db) -> None:
    name = "00000001000000FF000000FE"  # far beyond anything this server writes
    # The server's own archive command, its segment read from a pipe that stalls halfway:
    # killed there, as `kill -9` of the agent or the server would leave it.
    command = ARCHIVE_COMMAND.replace("%p", "-").replace("%f", name)
    archiver = subprocess.Popen(
        ["docker", "exec", "-i", db.container, "sh", "-c", command], stdin=subprocess.PIPE
    )
    assert archiver.stdin is not None
    try:
        archiver.stdin.write(os.urandom(1 << 20))  # half a segment, then nothing more
        archiver.stdin.flush()
        deadline = time.monotonic() + 60
        while not [p for p in db.archive.glob(f".{name}.*.partial") if p.stat().st_size > 0]:
            assert time.monotonic() < deadline, "the archive command wrote nothing"
            time.sleep(0.2)
        for pid in _proc_with(db, name) + _proc_with(db, "gzip -1 -c -"):
            docker("exec", db.container, "sh", "-c", 'kill -9 "$1"', "sh", pid, check=False)
        archiver.wait(timeout=60)
    finally:
        archiver.kill()
        with contextlib.suppress(BrokenPipeError):
            archiver.stdin.close()
        archiver.wait(timeout=60)
    assert archiver.returncode != 0
    assert not (db.archive / f"{name}.gz").exists()
    assert name not in pitr.archived_segments(db.state, db.tenant, "main")
    restore = pitr.RESTORE_COMMAND.replace("%p", "/tmp/restored").replace("%f", name)
    probe = subprocess.run(["docker", "exec", db.container, "sh", "-c", restore], check=False)
    assert probe.returncode == 1  # "not archived": recovery would stop here, not replay it

    # A real segment whose hidden partial a killed run left behind is archived whole.
    current = db.sql(CURRENT_SEGMENT)
    (db.archive / f".{current}.partial").write_bytes(b"garbage from a killed run")
    db.sql("INSERT INTO events (batch) VALUES ('x')")
    db.sql("SELECT pg_switch_wal()")
    done = db.archive / f"{current}.gz"
    deadline = time.monotonic() + 60
    while not done.exists():
        assert time.monotonic() < deadline, "the segment was not archived"
        time.sleep(0.2)
    plain = gzip.decompress(done.read_bytes())
    assert len(plain) == 16 * 1024 * 1024
    recorded = (db.archive / f"{current}.gz.sha256").read_text().split()
    assert recorded == [hashlib.sha256(done.read_bytes()).hexdigest(), f"{current}.gz"]

    # An existing different file is never overwritten: archiving that name fails.
    nxt = db.sql(CURRENT_SEGMENT)
    planted = gzip.compress(b"not this segment")
    (db.archive / f"{nxt}.gz").write_bytes(planted)
    db.sql("INSERT INTO events (batch) VALUES ('y')")
    db.sql("SELECT pg_switch_wal()")
    deadline = time.monotonic() + 60
    while db.sql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver") != nxt:
        assert time.monotonic() < deadline, "archiving the planted name did not fail"
        time.sleep(0.2)
    assert (db.archive / f"{nxt}.gz").read_bytes() == planted

    # Retention drops partials that old, and only those.
    old = time.time() - 7 * 3600
    [left] = db.archive.glob(f".{name}.*.partial")
    os.utime(left, (old, old))
    pitr.prune(db.state, db.tenant, "main", 7)
    assert not left.exists()
    assert (db.archive / f".{current}.partial").exists()  # new: a run may still be writing it
    assert done.exists()


def test_the_agents_backup_job_takes_a_base_backup_too(db: Db, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    agent = Agent(
        load(db.spec_file), db.state / "hosting.duckdb", spec_dir=tmp_path,
        config=AgentConfig(), log_file=log,
    )  # fmt: skip
    outcome = agent.run_job("backups")
    assert outcome.ok, outcome.error
    assert (outcome.summary["backed_up"], outcome.summary["base_backups"]) == (1, 1)
    assert outcome.summary["failed"] == {}
    [made] = pitr.list_bases(db.state, db.tenant, "main")
    assert made.sha256 == hashlib.sha256(made.path.read_bytes()).hexdigest()
    off = Agent(
        load(db.spec_file), db.state / "hosting.duckdb", spec_dir=tmp_path,
        config=AgentConfig(base_backups=False), log_file=log,
    )  # fmt: skip
    assert "base_backups" not in off.run_job("backups").summary
    assert len(pitr.list_bases(db.state, db.tenant, "main")) == 1


def _wait_archived(db: Db, segment: str) -> None:
    deadline = time.monotonic() + 60
    while segment not in pitr.archived_segments(db.state, db.tenant, "main"):
        assert time.monotonic() < deadline, f"{segment} was not archived"
        time.sleep(0.3)


def test_sealed_wal_holds_no_plaintext_restores_mixed_and_goes_off_host(
    db: Db, tmp_path: Path, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hosting.backups import crypto, wal_seal
    from tests.backups.conftest import PASSPHRASE
    from tests.backups.test_offsite import KEY_ENV, _bucket

    bucket, client = _bucket(s3_url, monkeypatch)
    db.spec_file.write_text(
        db.spec_file.read_text().replace(
            "tenants:\n",
            f"  backups:\n    s3:\n      endpoint: {s3_url}\n      bucket: {bucket}\n"
            f"      access_key_id: AKIDTEST\n      secret_access_key: {{env: {KEY_ENV}}}\n"
            "tenants:\n",
            1,
        )
    )
    agent = Agent(
        load(db.spec_file), db.state / "hosting.duckdb", spec_dir=db.spec_file.parent,
        config=AgentConfig(), log_file=tmp_path / "agent.log",
    )  # fmt: skip
    marker = f"sealed-marker-{secrets.token_hex(6)}"
    db.write("a", 10)
    base = _base(db)
    db.sql(f"INSERT INTO events (batch) VALUES ('{marker}')")
    segment = db.sql(CURRENT_SEGMENT)
    db.sql("SELECT pg_switch_wal()")
    _wait_archived(db, segment)
    plain = gzip.decompress((db.archive / f"{segment}.gz").read_bytes())
    assert marker.encode() in plain  # the row is in this segment, in clear, until sealed

    sealed = agent.run_job("wal")
    assert sealed.ok and sealed.summary["failed"] == {}, sealed.summary
    assert sealed.summary["sealed"] >= 1 and sealed.summary["copied"] >= 1  # base: by `base`
    assert not list(db.archive.glob("*.gz")) and not list(db.archive.glob("*.sha256"))
    raw = (db.archive / f"{segment}{wal_seal.SEALED}").read_bytes()
    assert raw.startswith(crypto.MAGIC) and marker.encode() not in raw
    with (db.archive / f"{segment}{wal_seal.SEALED}").open("rb") as fh:
        assert gzip.decompress(b"".join(crypto.unseal(fh, PASSPHRASE, segment))) == plain
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    prefix = f"{db.tenant}/main/"
    assert f"{prefix}base/{base}" in keys and f"{prefix}wal/{segment}.gz.enc" in keys
    assert all(k.endswith((".gz.enc", ".base", ".json")) for k in keys), keys
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert marker.encode() not in body

    # Mixed: the WAL up to the marker sealed, what follows (b, c) still plain.
    db.write("b", 10)
    _pause()
    target = db.now()
    _pause()
    db.write("c", 5)
    done = _restore(db, target)
    assert done.returncode == 0, done.stderr
    assert [db.count(b) for b in ("a", marker, "b", "c")] == [10, 1, 10, 0]
    assert not list(db.archive.parent.glob(".wal-opened-*"))  # no plaintext left behind

    # All of it sealed now, the new timeline's history too: a restore follows it.
    db.write("d", 7)
    _pause()
    second = db.now()
    _pause()
    db.write("e", 3)
    last = db.sql(CURRENT_SEGMENT)
    db.sql("SELECT pg_switch_wal()")
    _wait_archived(db, last)
    assert agent.run_job("wal").ok
    assert any(p.name.endswith(".history.gz.enc") for p in db.archive.iterdir())
    done = _restore(db, second)
    assert done.returncode == 0, done.stderr
    assert [db.count(b) for b in ("a", marker, "b", "c", "d", "e")] == [10, 1, 10, 0, 7, 0]
    assert db.sql("SELECT timeline_id FROM pg_control_checkpoint()") == "3"
    assert not list(db.archive.parent.glob(".wal-opened-*"))
