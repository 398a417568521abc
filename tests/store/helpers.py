"""A state directory with a populated store, and the real CLI run against it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb

from tests.conftest import REPO, run_hosting

MIGRATIONS = sorted(p.stem for p in (REPO / "hosting" / "store" / "migrations").glob("*.sql"))


def write_spec(root: Path) -> Path:
    """Two tenants; Docker at a socket that does not exist, so nothing here touches the real
    engine (status and the agent then report it unreachable)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "hosting.yaml").write_text(
        "version: 1\n"
        "platform:\n  name: st\n  domain: apps.localhost\n  public_ipv4: 127.0.0.1\n"
        f"  docker: {{host: 'unix://{root}/no-docker.sock'}}\n"
        "tenants:\n"
        "  acme:\n    name: Acme\n    email: a@acme.test\n    plan: starter\n"
        "    started: 2026-01-03\n"
        "    deployments:\n      shop: {type: web, image: x, port: 80}\n"
        "  globex:\n    name: Globex\n    email: b@globex.test\n    plan: pro\n"
        "    started: 2026-01-20\n"
        "    deployments:\n      api: {type: api, image: y, port: 80}\n"
    )
    return root


def hosting(
    root: Path, *args: str, state_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI in `root`, with the state directory given explicitly when asked."""
    prefix = ("--state-dir", str(state_dir)) if state_dir else ()
    return run_hosting(*prefix, *args, cwd=root, env={"PYTHONPATH": str(REPO)})


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def sql(store: Path, statement: str) -> None:
    conn = duckdb.connect(str(store))
    try:
        conn.execute(statement)
    finally:
        conn.close()


def one_clean_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, one `error:` line on stderr, no traceback; returns that line."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
