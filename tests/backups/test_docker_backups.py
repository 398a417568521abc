"""Backups on a real PostgreSQL 15 container, hardened as the stack runs it: dump, drop,
restore; retention; failures leave no file; the password shows up nowhere; storage counts
the backup bytes; the agent's job backs up too."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hosting.backups import backup_one, list_backups
from hosting.errors import ProviderError
from hosting.metering.agent import Agent, AgentConfig
from hosting.metering.engine import Engine
from hosting.metering.storage import storage_cycle
from hosting.spec import load, names
from hosting.stacks.containers import POSTGRES_CAPS
from tests.conftest import run_hosting
from tests.metering.helpers import docker, remove, rows, run_labelled, unique, write_spec

pytestmark = pytest.mark.docker
USER = "owner"


@dataclass
class Db:
    tenant: str
    name: str  # container name
    password: str
    spec_file: Path
    state: Path
    outputs: list[str]  # every CLI output seen, checked for the password at the end

    def sql(self, statement: str) -> str:
        # Over the trusted local socket, as the backups themselves connect.
        return docker(
            "exec", self.name, "psql", "-h", "/tmp", "-U", USER, "-d", names.database_name("main"),
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement,
        )  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = run_hosting(
            "-f", str(self.spec_file), "--state-dir", str(self.state), *args,
            cwd=self.spec_file.parent,
        )  # fmt: skip
        self.outputs += [proc.stdout, proc.stderr]
        return proc


def _start(
    tenant: str,
    name: str,
    volume: str,
    password: str,
    *server: str,
    tmpfs: str = "/var/run/postgresql",
) -> None:
    caps = [arg for cap in POSTGRES_CAPS for arg in ("--cap-add", cap)]
    run_labelled(
        name, tenant, "main", "database",
        "--read-only", "--tmpfs", "/tmp", "--tmpfs", tmpfs,
        "--cap-drop", "ALL", *caps, "--security-opt", "no-new-privileges",
        "-e", f"POSTGRES_PASSWORD={password}", "-e", f"POSTGRES_USER={USER}",
        "-e", f"POSTGRES_DB={names.database_name('main')}",
        "-v", f"{volume}:/var/lib/postgresql/data", "hosting-test/postgres:15", *server,
    )  # fmt: skip


def _wait_ready(db: Db, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.sql("SELECT 1")
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_final_server(db: Db, timeout: float = 90) -> None:
    """Ready, and not the entrypoint's temporary initdb server, which answers queries too
    and then shuts down: the final one runs as PID 1."""
    deadline = time.monotonic() + timeout
    while docker("exec", db.name, "cat", "/proc/1/comm", check=False) != "postgres":
        assert time.monotonic() < deadline, docker("logs", db.name)
        time.sleep(0.5)
    _wait_ready(db, timeout)


@pytest.fixture(scope="module")
def db(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    folder = tmp_path_factory.mktemp("backups")
    tenant = unique()
    # named as apply names it: backups find the database by its name as well as labels
    name, volume = names.container_name("mt", tenant, "main", 0), f"{tenant}_data"
    password = f"Zq{secrets.token_hex(8)}PWSECRET"
    spec_file = write_spec(
        folder,
        {
            tenant: {
                "main": {"type": "database"},
                "site": {"type": "web", "image": "x", "port": 8080},
            }
        },
    )
    try:
        _start(tenant, name, volume, password)
        found = Db(tenant, name, password, spec_file, folder / "state", [])
        _wait_ready(found)
        yield found
    finally:
        remove([name])
        docker("volume", "rm", "-f", volume, check=False)


def _everything_under(folder: Path) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def test_backup_drop_restore_brings_the_rows_back(db: Db) -> None:
    db.sql("CREATE TABLE known (id int PRIMARY KEY, label text)")
    db.sql("INSERT INTO known SELECT g, 'row ' || g FROM generate_series(1, 250) g")
    ran = db.cli("backup", "run", f"{db.tenant}/main", "--json")
    assert ran.returncode == 0, ran.stderr
    made = json.loads(ran.stdout)["backups"][0]
    dump = Path(made["file"]["path"])
    assert dump.parent == db.state / "backups" / db.tenant / "main"
    assert dump.read_bytes()[:8] == b"HSTBKENC"  # encrypted, not pg_dump's own PGDMP
    assert b"row 99" not in dump.read_bytes() and b"known" not in dump.read_bytes()
    assert made["file"]["size_bytes"] == dump.stat().st_size
    sidecar = json.loads(dump.with_suffix(".json").read_text())
    assert sidecar["row_counts"] == {"public.known": 250}
    import hashlib

    assert sidecar["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert sidecar["pg_version"].startswith("15.")
    assert sidecar["started"] <= sidecar["finished"]

    db.sql("DROP TABLE known")
    refused = db.cli("backup", "restore", f"{db.tenant}/main", dump.name)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(AssertionError):
        db.sql("SELECT count(*) FROM known")  # still dropped: nothing was restored

    restored = db.cli("backup", "restore", f"{db.tenant}/main", dump.name, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert db.sql("SELECT count(*), sum(id), max(label) FROM known") == "250|31375|row 99"

    listed = db.cli("backup", "list", db.tenant)
    assert listed.returncode == 0 and dump.name in listed.stdout


def test_retention_keeps_exactly_the_newest_n(db: Db, tmp_path: Path) -> None:
    spec = load(db.spec_file)
    state = tmp_path / "state"
    made = [backup_one(spec, state, db.tenant, "main", keep=3).file for _ in range(5)]
    kept = list_backups(state, db.tenant, "main")
    assert [b.name for b in kept] == [m.name for m in made[-3:] if m is not None]
    folder = state / "backups" / db.tenant / "main"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(
        b.path.with_suffix(".json").name for b in kept
    )
    ran = db.cli("--state-dir", str(state), "backup", "run", db.tenant, "--keep", "2")
    assert ran.returncode == 0, ran.stderr
    assert "site" not in ran.stdout  # only database deployments
    assert len(list(folder.glob("*.dump"))) == 2


def test_storage_cycle_counts_the_backup_bytes(db: Db, tmp_path: Path) -> None:
    spec = load(db.spec_file)
    store = tmp_path / "hosting.duckdb"
    engine = Engine()
    made = backup_one(spec, tmp_path, db.tenant, "main").file
    assert made is not None
    folder = tmp_path / "backups" / db.tenant / "main"
    on_disk = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert on_disk > made.size_bytes > 0  # dump plus sidecar

    def database_bytes(backups: Path) -> int:
        result = storage_cycle(store, engine, spec, spec_dir=tmp_path, backups_dir=backups)
        found = [
            s.size_bytes
            for s in result.measured
            if (s.tenant, s.storage_type) == (db.tenant, "database")
        ]
        assert len(found) == 1, result
        return found[0]

    # The volume is measured too; bracket it with two runs that see no backups.
    empty = tmp_path / "none"
    before = database_bytes(empty)
    with_backups = database_bytes(tmp_path / "backups")
    after = database_bytes(empty)
    assert min(before, after) <= with_backups - on_disk <= max(before, after)
    query = (
        "SELECT size_bytes FROM deployment_storage WHERE tenant = ? AND storage_type = 'database'"
        " ORDER BY last_calculated"
    )
    assert [r[0] for r in rows(store, query, [db.tenant])] == [before, with_backups, after]


def test_the_agent_job_backs_up_past_a_failing_one_and_logs_no_secret(
    db: Db, tmp_path: Path
) -> None:
    # "gone" (listed first) has no container: its failure must not stop "main"'s backup.
    deployments = {"gone": {"type": "database"}, "main": {"type": "database"}}
    spec = load(write_spec(tmp_path, {db.tenant: deployments}))
    log = tmp_path / "agent.log"
    agent = Agent(
        spec, tmp_path / "hosting.duckdb", spec_dir=tmp_path,
        config=AgentConfig(backup_keep=1), log_file=log,
    )  # fmt: skip
    for _ in range(2):
        outcome = agent.run_job("backups")
        assert outcome.ok and outcome.summary["backed_up"] == 1
        assert list(outcome.summary["failed"]) == [f"{db.tenant}/gone"]
    assert len(list_backups(tmp_path, db.tenant, "main")) == 1  # backup_keep=1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [x["deployment"] for x in lines if x["event"] == "backup_failed"] == [
        f"{db.tenant}/gone"
    ] * 2
    assert db.password not in log.read_text()


def test_a_failed_dump_leaves_no_file_and_a_clear_error(db: Db, tmp_path: Path) -> None:
    state = tmp_path / "state"
    folder = state / "backups" / db.tenant / "main"
    dbname = names.database_name("main")

    def on_postgres(statement: str) -> None:
        docker("exec", db.name, "psql", "-h", "/tmp", "-U", USER, "-d", "postgres", "-X", "-q",
               "-v", "ON_ERROR_STOP=1", "-c", statement)  # fmt: skip

    # A real pg_dump failure: the server refuses connections to the database, even ours.
    on_postgres(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    try:
        refused = db.cli("--state-dir", str(state), "backup", "run", f"{db.tenant}/main")
    finally:
        on_postgres(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: pg_dump of {db.tenant}/main failed")
    assert "not currently accepting connections" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert [p.name for p in folder.iterdir() if p.name != ".lock"] == []

    with pytest.raises(ProviderError, match=r"took over 0\.001 s and was stopped"):
        backup_one(load(db.spec_file), state, db.tenant, "main", timeout_s=0.001)
    assert [p.name for p in folder.iterdir() if p.name != ".lock"] == []

    docker("pause", db.name)
    try:
        paused = db.cli("--state-dir", str(state), "backup", "run", f"{db.tenant}/main")
    finally:
        docker("unpause", db.name)
    assert paused.returncode == 1 and "is not running (it is paused)" in paused.stderr

    unknown = db.cli("backup", "run", f"{db.tenant}/nope")
    assert unknown.returncode == 1 and "has no deployment `nope`" in unknown.stderr
    web = db.cli("backup", "run", f"{db.tenant}/site")
    assert web.returncode == 1 and "not a database" in web.stderr

    blocked = tmp_path / "blocked"
    (blocked / "backups").mkdir(parents=True)
    (blocked / "backups" / db.tenant).write_text("a file where a folder should be")
    unwritable = db.cli("--state-dir", str(blocked), "backup", "run", f"{db.tenant}/main")
    assert unwritable.returncode == 1, unwritable.stderr
    assert f"error: cannot write the backup of {db.tenant}/main in" in unwritable.stderr

    docker("stop", "-t", "5", db.name)
    stopped = db.cli("--state-dir", str(state), "backup", "run", f"{db.tenant}/main")
    assert stopped.returncode == 1
    assert f"database container of {db.tenant}/main is not running" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert [p.name for p in folder.iterdir() if p.name != ".lock"] == []
    docker("start", db.name)
    _wait_ready(db)


def test_the_password_appears_nowhere(db: Db) -> None:
    # Runs last in this module: it checks every CLI output seen and every file written.
    assert db.outputs, "no CLI output was collected"
    for text in db.outputs:
        assert db.password not in text
    written = _everything_under(db.state)
    assert any(p.endswith(".dump") for p, _ in written)
    for path, data in written:
        assert db.password not in path
        assert db.password.encode() not in data


def test_a_server_with_its_socket_in_var_run_postgresql(docker_engine: str, tmp_path: Path) -> None:
    # The upstream image listens on /var/run/postgresql; the backup finds the socket there too.
    tenant = unique()
    # named as apply names it: backups find the database by its name as well as labels
    name, volume = names.container_name("mt", tenant, "main", 0), f"{tenant}_data"
    password = f"Zq{secrets.token_hex(8)}PWSECRET"
    spec = load(write_spec(tmp_path, {tenant: {"main": {"type": "database"}}}))
    try:
        # A tmpfs belongs to root unless told otherwise; the image runs as user postgres.
        ids = docker("run", "--rm", "--entrypoint", "sh", "hosting-test/postgres:15", "-c",
                     "echo uid=$(id -u),gid=$(id -g)")  # fmt: skip
        _start(
            tenant, name, volume, password,
            "-c", "unix_socket_directories=/var/run/postgresql",
            tmpfs=f"/var/run/postgresql:rw,{ids}",
        )  # fmt: skip
        ready = ["pg_isready", "-h", "/var/run/postgresql", "-U", USER]
        deadline = time.monotonic() + 60
        while docker("exec", name, *ready, check=False).find("accepting") < 0:
            running = docker("inspect", "-f", "{{.State.Running}}", name) == "true"
            assert running and time.monotonic() < deadline, docker("logs", name)
            time.sleep(0.5)
        assert docker("exec", name, "ls", "-a", "/tmp") in (". ..", ".\n..")  # not in /tmp
        made = backup_one(spec, tmp_path, tenant, "main").file
        assert made is not None and made.path.read_bytes()[:8] == b"HSTBKENC"
        assert made.pg_version is not None and made.pg_version.startswith("15.")
    finally:
        remove([name])
        docker("volume", "rm", "-f", volume, check=False)
