"""A PostgreSQL major upgrade through the real engine (issue 12): `version: 15 → 17` is
refused without --allow-major-upgrade, then dumped, restored into a new volume, checked and
switched; the read replica follows the new primary, the old volume stays until `backup
prune`. The 17 image is Debian trixie's postgresql-17 (.ci/images.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from hosting.spec import names
from tests.engine.conftest import Project

pytestmark = pytest.mark.engine

SPEC = """
version: 1
platform:
  name: {platform}
  domain: apps.test
  public_ipv4: 127.0.0.1
  images: {{proxy: "hosting-test/caddy:latest", postgres: "{platform}-pg:{{version}}"}}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: pro
    started: 2026-09-03
    deployments:
      main: {{type: database, version: {version}, replicas: 1, pooling: true}}
"""

ROWS = (
    "CREATE TABLE orders (id int PRIMARY KEY, note text);"
    "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 2500) g;"
    "CREATE SCHEMA shop; CREATE TABLE shop.items (id int);"
    "INSERT INTO shop.items SELECT generate_series(1, 37);"
)


def _sql(container: str, sql: str) -> str:
    out = subprocess.run(
        ["docker", "exec", container, "sh", "-c",
         'psql -h /tmp -U "$POSTGRES_USER" -d db_main -v ON_ERROR_STOP=1 -tAc "$1"',
         "sh", sql],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _eventually(container: str, sql: str, expected: str) -> str:
    """The answer once it is `expected`, or the last one after 60 tries (a server that just
    started, a replica catching up): no time is asserted."""
    got = ""
    for _ in range(60):
        out = subprocess.run(
            ["docker", "exec", container, "sh", "-c",
             'psql -h /tmp -U "$POSTGRES_USER" -d db_main -tAc "$1"', "sh", sql],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        got = out.stdout.strip()
        if got == expected:
            break
        time.sleep(1)
    return got


def _volumes() -> set[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True
    )
    return set(out.stdout.split())


def _mounted(container: str) -> list[str]:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Mounts}}", container], capture_output=True, text=True
    )
    return [m["Name"] for m in json.loads(out.stdout) if m["Type"] == "volume"]


@pytest.fixture
def images(project: Project) -> Iterator[None]:
    """This test's own tags: Debian's 15 and 17, and a "16" that cannot run PostgreSQL (the
    edge's Caddy, which exits at once without its config) for the failed upgrade."""
    tags = {
        15: "hosting-test/postgres:15",
        16: "hosting-test/caddy:latest",
        17: "hosting-test/postgres:17",
    }
    for version, source in tags.items():
        subprocess.run(["docker", "tag", source, f"{project.platform}-pg:{version}"], check=True)
    yield
    subprocess.run(["docker", "rmi", *(f"{project.platform}-pg:{v}" for v in tags)],
                   capture_output=True)  # fmt: skip


def test_major_upgrade_refused_failed_then_migrated_and_the_old_volume_pruned(
    project: Project, images: None
) -> None:
    project.write(SPEC.format(platform=project.platform, version=15))
    project.ok("apply", "--yes")
    primary = names.container_name(project.platform, "acme", "main", 0)
    replica = names.container_name(project.platform, "acme", "main", 1)
    old_volume = names.volume_name(project.platform, "acme", "main")
    _sql(primary, ROWS)
    project.ok("backup", "base", "acme/main")  # of 15: retired by the upgrade

    project.write(SPEC.format(platform=project.platform, version=17))
    for command in (["plan"], ["apply", "--yes"]):
        refused = project.run(*command)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "acme/main" in refused.stderr and "PostgreSQL 15" in refused.stderr
        assert "--allow-major-upgrade" in refused.stderr and "Traceback" not in refused.stderr
    assert _sql(primary, "SHOW server_version_num").startswith("15")  # nothing was applied

    # A new version that does not start: apply exits 1, the old server serves on its volume.
    # Through a saved plan: one made with the flag carries it to `apply FILE`.
    project.write(SPEC.format(platform=project.platform, version=16))
    saved = project.folder / "upgrade-16.plan"
    assert project.plan("--allow-major-upgrade", "--out", str(saved))[0] == 2
    failed = project.run("apply", str(saved))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "PostgreSQL 15 → 16 failed, the old server is serving again" in failed.stderr
    served = "SELECT current_setting('server_version_num')::int / 10000, count(*) FROM orders"
    assert _sql(primary, served) == "15|2500"
    assert old_volume + "_pg16" not in _volumes()
    assert _mounted(primary) == [old_volume]
    assert _eventually(replica, "SELECT pg_is_in_recovery()", "t") == "t"  # started again too

    project.write(SPEC.format(platform=project.platform, version=17))

    code, preview = project.plan("--allow-major-upgrade")
    assert code == 2
    [acme] = [t for t in preview["tenants"] if t["tenant"] == "acme"]
    assert [(m["deployment"], m["from_version"], m["to_version"]) for m in acme["migrations"]] == [
        ("main", 15, 17)
    ]

    applied = project.ok("apply", "--yes", "--allow-major-upgrade")
    assert "acme/main: upgraded PostgreSQL 15 → 17 (2 tables, 2537 rows checked)" in applied.stderr
    assert "warning" not in applied.stderr
    # point-in-time recovery starts again from a base backup of 17; 15's are retired
    listed = json.loads(project.ok("backup", "list", "acme/main", "--json").stdout)
    assert [b["pg_version"].split(".")[0] for b in listed["base_backups"]] == ["17"]
    assert _sql(primary, "SELECT version()").startswith("PostgreSQL 17.")
    assert _sql(primary, "SELECT count(*), sum(id) FROM orders") == "2500|3126250"
    assert _sql(primary, "SELECT count(*) FROM shop.items") == "37"
    assert _mounted(primary)[0] == old_volume + "_pg17"
    assert old_volume in _volumes()  # kept until prune
    # the replica cloned the new primary: version 17, streaming the rows
    standby = "SELECT pg_is_in_recovery()::text || current_setting('server_version_num')"
    assert _sql(replica, standby).startswith("true17")
    _sql(primary, "INSERT INTO orders VALUES (2501, 'after the upgrade')")
    assert _eventually(replica, "SELECT count(*) FROM orders", "2501") == "2501"

    # the pooler serves the new server, with the login the dump brought over
    login = json.loads(project.ok("credentials", "acme/main", "--show-secrets", "--json").stdout)
    pooled = subprocess.run(
        ["docker", "exec", "-e", "PGPASSWORD", f"{project.platform}_acme_main_pooler",
         "psql", "-h", "127.0.0.1", "-p", "6432", "-U", login["user"], "-d", "db_main",
         "-tAc", "SELECT current_setting('server_version_num')::int / 10000, count(*) FROM orders"],
        capture_output=True, text=True, env={**os.environ, "PGPASSWORD": login["password"]},
    )  # fmt: skip
    assert pooled.stdout.strip() == "17|2501", pooled.stderr

    assert project.plan()[0] == 0  # the program agrees with the engine

    pruned = project.ok("backup", "prune", "acme/main", "--yes")
    assert old_volume in pruned.stdout
    assert old_volume not in _volumes()
    assert old_volume + "_pg17" in _volumes()
    assert _sql(primary, "SELECT count(*) FROM orders") == "2501"
