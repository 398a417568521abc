"""A store in a read-only state directory (a preview job's read-only credential): read without
a lock or a migration when it is current, refused with one clear line when it is not."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hosting.store import connect

pytestmark = pytest.mark.root

READ = (
    "from pathlib import Path; from hosting.store import connect\n"
    "with connect(Path({path!r}), read_only=True) as c:\n"
    "    print(c.execute('SELECT count(*) FROM schema_migrations').fetchone()[0])\n"
)


def read_mounted_read_only(folder: Path, path: Path) -> subprocess.CompletedProcess[str]:
    code = shlex.quote(READ.format(path=str(path)))
    script = f"mount --bind -o ro {folder} {folder} && exec {sys.executable} -c {code}"
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )


def test_a_current_store_reads_from_a_read_only_folder(tmp_path: Path) -> None:
    path = tmp_path / "hosting.duckdb"
    with connect(path) as conn:
        shipped = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    before = sorted(p.name for p in tmp_path.iterdir())
    out = read_mounted_read_only(tmp_path, path)
    assert out.returncode == 0, out.stderr
    assert shipped is not None and out.stdout.strip() == str(shipped[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_unmigrated_store_in_a_read_only_folder_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "hosting.duckdb"
    with connect(path) as conn:
        last = conn.execute("SELECT max(name) FROM schema_migrations").fetchone()
        assert last is not None
        conn.execute("DELETE FROM schema_migrations WHERE name = ?", [last[0]])
    out = read_mounted_read_only(tmp_path, path)
    assert out.returncode != 0
    assert f"needs migrations ({last[0]}) and is read-only here" in out.stderr
