"""Restore drills and encrypted backups on a real PostgreSQL 15 container: a good backup
drills ok; a corrupted file is caught by the drill and recorded as failed; a restore of a cut
or wrong-key file is refused and changes nothing; the throwaway container never outlives its
drill; a backup killed mid-write leaves no file that is taken for a good one."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting.backups import backup_one, list_backups
from hosting.backups.drills import drill_one
from hosting.metering.agent import Agent, AgentConfig
from hosting.spec import load, names
from tests.backups.test_docker_backups import USER, Db, _start, _wait_final_server
from tests.metering.helpers import docker, remove, rows, unique, write_spec

pytestmark = pytest.mark.docker
DBNAME = names.database_name("main")


@pytest.fixture(scope="module")
def db(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    folder = tmp_path_factory.mktemp("drills")
    tenant = unique()
    # named as apply names it: backups find the database by its name as well as labels
    name, volume = names.container_name("mt", tenant, "main", 0), f"{tenant}_data"
    password = f"Zq{secrets.token_hex(8)}PWSECRET"
    spec_file = write_spec(folder, {tenant: {"main": {"type": "database"}}})
    try:
        _start(tenant, name, volume, password)
        found = Db(tenant, name, password, spec_file, folder / "state", [])
        _wait_final_server(found)
        found.sql("CREATE TABLE customers (id int PRIMARY KEY, email text)")
        found.sql(
            "INSERT INTO customers SELECT g, 'person' || g || '@example.test' "
            "FROM generate_series(1, 300) g"
        )
        found.sql("CREATE TABLE orders (id int, customer int REFERENCES customers)")
        found.sql("INSERT INTO orders SELECT g, 1 + g % 300 FROM generate_series(1, 1200) g")
        found.sql("INSERT INTO customers VALUES (4242, 'known-row-alice@example.test')")
        found.sql("ANALYZE")
        yield found
    finally:
        remove([name])
        docker("volume", "rm", "-f", volume, check=False)


def _drill_containers() -> str:
    return docker("ps", "-a", "-q", "--filter", "label=hosting.drill")


def _backup(db: Db) -> Path:
    ran = db.cli("backup", "run", f"{db.tenant}/main", "--json")
    assert ran.returncode == 0, ran.stderr
    return Path(json.loads(ran.stdout)["backups"][0]["file"]["path"])


def test_a_good_backup_drills_ok_and_list_says_so(db: Db) -> None:
    dump = _backup(db)
    assert b"known-row-alice" not in dump.read_bytes()  # encrypted at rest
    assert json.loads(dump.with_suffix(".json").read_text())["row_counts"] == {
        "public.customers": 301,
        "public.orders": 1200,
    }
    before = db.cli("backup", "list", f"{db.tenant}/main")
    assert before.returncode == 0 and "never restored" in before.stdout
    status = db.cli("status", "--tenant", db.tenant)
    assert status.returncode == 0, status.stderr
    assert f"backup: {db.tenant}/main: newest " in status.stdout
    assert status.stdout.rstrip().endswith("never restored")

    drilled = db.cli("backup", "drill", f"{db.tenant}/main")
    assert drilled.returncode == 0, drilled.stderr
    assert f"{db.tenant}/main {dump.name}: restored ok" in drilled.stdout
    assert "(2 tables," in drilled.stdout
    assert _drill_containers() == ""  # the throwaway container is gone

    listed = db.cli("backup", "list", f"{db.tenant}/main", "--json")
    found = json.loads(listed.stdout)["backups"]
    assert [(b["name"], b["restore_drill"]["ok"]) for b in found] == [(dump.name, True)]
    assert found[0]["restore_drill"]["rows_checked"] == 1501
    shown = json.loads(db.cli("status", "--tenant", db.tenant, "--json").stdout)["backups"]
    assert [(b["deployment"], b["newest_backup"], b["drill"]["ok"]) for b in shown] == [
        ("main", dump.name, True)
    ]
    recorded = rows(
        db.state / "hosting.duckdb",
        "SELECT backup, ok, reason, tables_checked FROM restore_drills WHERE tenant = ?",
        [db.tenant],
    )
    assert recorded == [(dump.name, True, None, 2)]


def _agent(db: Db, tmp_path: Path) -> Agent:
    spec = load(db.spec_file)
    return Agent(spec, db.state / "hosting.duckdb", spec_dir=tmp_path, config=AgentConfig())


def test_a_corrupted_backup_is_caught_by_the_drill_not_by_the_user(db: Db, tmp_path: Path) -> None:
    dump = _backup(db)
    good = dump.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of a sealed chunk
    dump.write_bytes(bytes(data))

    outcome = _agent(db, tmp_path).run_job("drills")
    assert outcome.ok and outcome.summary["drilled"] == 1
    reason = outcome.summary["failed"][f"{db.tenant}/main"]
    assert reason == f"{dump.name} is damaged: chunk 0 fails its authentication check"
    assert _drill_containers() == ""

    # The file intact but not the one whose checksum was recorded: caught too.
    dump.write_bytes(good)
    sidecar = dump.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "sha256": "0" * 64}))
    again = db.cli("backup", "drill", f"{db.tenant}/main")
    assert again.returncode == 1
    assert "restore FAILED" in again.stdout and "does not match the checksum" in again.stdout
    dump.write_bytes(bytes(data))
    sidecar.write_text(json.dumps(meta))
    assert db.cli("backup", "drill", f"{db.tenant}/main").returncode == 1

    listed = db.cli("backup", "list", f"{db.tenant}/main")
    line = next(ln for ln in listed.stdout.splitlines() if dump.name in ln)
    assert "restore FAILED" in line and "authentication" in line
    refused = db.cli("backup", "restore", f"{db.tenant}/main", dump.name, "--yes")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2  # the error and its hint
    dump.unlink()
    sidecar.unlink()


def test_the_drill_compares_row_counts_with_those_at_backup_time(db: Db) -> None:
    spec = load(db.spec_file)
    made = backup_one(spec, db.state, db.tenant, "main").file
    assert made is not None
    sidecar = made.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["row_counts"]["public.orders"] = 1201  # what the live database had, say
    sidecar.write_text(json.dumps(meta))
    result = drill_one(spec, db.state, made)
    assert not result.ok
    assert result.reason == "table public.orders has 1200 rows restored, 1201 when backed up"
    meta["row_counts"]["public.gone"] = 5
    meta["row_counts"]["public.orders"] = 1200
    sidecar.write_text(json.dumps(meta))
    missing = drill_one(spec, db.state, made)
    assert missing.reason == "table public.gone is missing from the restored copy"
    assert _drill_containers() == ""
    made.path.unlink()
    sidecar.unlink()


def test_a_cut_or_wrong_key_backup_is_refused_and_nothing_changes(db: Db) -> None:
    dump = _backup(db)
    db.sql("INSERT INTO customers VALUES (5000, 'after the backup')")
    wrong = db.cli("backup", "restore", f"{db.tenant}/main", dump.name, "--yes")
    assert wrong.returncode == 0, wrong.stderr  # the right key restores
    assert db.sql("SELECT count(*) FROM customers WHERE id = 5000") == "0"

    db.sql("INSERT INTO customers VALUES (5000, 'after the backup')")
    env = {"HOSTING_PASSPHRASE": "not-the-passphrase"}
    proc = subprocess.run(
        [sys.executable, "-m", "hosting", "-f", str(db.spec_file), "--state-dir", str(db.state),
         "backup", "restore", f"{db.tenant}/main", dump.name, "--yes"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "was encrypted under another passphrase than HOSTING_PASSPHRASE" in proc.stderr
    assert "Traceback" not in proc.stderr and "not-the-passphrase" not in proc.stderr

    cut = dump.with_name("cut-" + dump.name)
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size - 100])
    refused = db.cli("backup", "restore", f"{db.tenant}/main", str(cut), "--yes")
    assert refused.returncode == 1
    assert "truncated" in refused.stderr and "Traceback" not in refused.stderr
    assert db.sql("SELECT count(*) FROM customers WHERE id = 5000") == "1"  # untouched
    db.sql("DELETE FROM customers WHERE id = 5000")
    cut.unlink()


def test_kill_9_mid_backup_leaves_no_file_taken_for_a_good_one(db: Db, tmp_path: Path) -> None:
    # pg_dump waits behind a lock on a table too small to be counted (not among the 20
    # largest), so the backup is caught mid-way with its partial file open.
    for i in range(20):
        db.sql(f"CREATE TABLE filler{i:02d} AS SELECT g FROM generate_series(1, 2000) g")
    db.sql("CREATE TABLE zz_locked (id int)")
    db.sql("ANALYZE")
    state = tmp_path / "state"
    folder = state / "backups" / db.tenant / "main"
    holder = subprocess.Popen(
        ["docker", "exec", "-i", db.name, "psql", "-h", "/tmp", "-U", USER, "-d", DBNAME,
         "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert holder.stdin is not None
    backup: subprocess.Popen[bytes] | None = None
    try:
        holder.stdin.write("BEGIN; LOCK TABLE zz_locked IN ACCESS EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        _until(lambda: db.sql(_granted("AccessExclusiveLock")) == "1", "the lock is held")
        backup = subprocess.Popen(
            [sys.executable, "-m", "hosting", "-f", str(db.spec_file), "--state-dir",
             str(state), "backup", "run", f"{db.tenant}/main"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _until(lambda: db.sql(_waiting()) == "1", "pg_dump waits for the lock")
        partials = list(folder.glob(".*.partial"))
        assert len(partials) == 1  # the dump is under way, its file open
        os.kill(backup.pid, signal.SIGKILL)
        backup.wait()
    finally:
        if backup is not None and backup.poll() is None:
            backup.kill()
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=60)
        db.sql("DROP TABLE zz_locked")
        for i in range(20):
            db.sql(f"DROP TABLE filler{i:02d}")
    assert list_backups(state, db.tenant, "main") == []
    assert [p.name for p in folder.glob("*.dump")] == []
    listed = db.cli("--state-dir", str(state), "backup", "list", f"{db.tenant}/main")
    assert listed.stdout.strip() == "no backups"
    drilled = db.cli("--state-dir", str(state), "backup", "drill", f"{db.tenant}/main")
    assert drilled.returncode == 1 and "has no backup to drill" in drilled.stderr
    restored = db.cli("--state-dir", str(state), "backup", "restore", f"{db.tenant}/main",
                      "latest", "--yes")  # fmt: skip
    assert restored.returncode == 1 and "no backup file latest" in restored.stderr


def _granted(mode: str) -> str:
    return (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        f"WHERE c.relname = 'zz_locked' AND l.mode = '{mode}' AND l.granted"
    )


def _waiting() -> str:
    return (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "WHERE c.relname = 'zz_locked' AND NOT l.granted"
    )


def _until(check: object, what: str, timeout: float = 120) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.3)


def test_a_dump_from_before_encryption_still_drills_and_restores(db: Db) -> None:
    from hosting.backups.reading import plaintext

    spec = load(db.spec_file)
    made = backup_one(spec, db.state, db.tenant, "main").file
    assert made is not None
    meta = json.loads(made.path.with_suffix(".json").read_text())
    # What an older hosting wrote: pg_dump's own bytes, a sidecar without image or counts.
    old = made.path.with_name("20200101T000000.000Z.dump")
    old.write_bytes(b"".join(plaintext(made.path)))
    assert old.read_bytes()[:5] == b"PGDMP"
    old.with_suffix(".json").write_text(json.dumps({"pg_version": meta["pg_version"]}))
    made.path.unlink()
    made.path.with_suffix(".json").unlink()
    legacy = list_backups(db.state, db.tenant, "main")[0]
    assert legacy.name == old.name
    result = drill_one(spec, db.state, legacy)  # its image from the running database
    assert (result.ok, result.reason, result.tables_checked) == (True, None, 0)
    db.sql("DELETE FROM orders WHERE id <= 10")
    restored = db.cli("backup", "restore", f"{db.tenant}/main", old.name, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert db.sql("SELECT count(*) FROM orders") == "1200"
    old.unlink()
    old.with_suffix(".json").unlink()
