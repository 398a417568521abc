"""Shared helpers for the metering tests: spec files, labelled containers, store reads."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

SPEC_HEAD = """version: 1
platform:
  name: {platform}
  domain: apps.localhost
  public_ipv4: 127.0.0.1
tenants:
"""


def unique(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def write_spec(
    folder: Path,
    tenants: dict[str, dict[str, dict[str, Any]]],
    *,
    plan: str = "starter",
    platform: str = "mt",
) -> Path:
    """A hosting.yaml with the given tenants → deployments → fields."""
    lines = [SPEC_HEAD.format(platform=platform)]
    for tid, deps in tenants.items():
        lines.append(
            f"  {tid}:\n    name: Test {tid}\n    email: ops@{tid}.test\n    plan: {plan}\n"
            "    started: 2026-01-01\n    deployments:\n"
        )
        for did, fields in deps.items():
            lines.append(f"      {did}:\n")
            for key, value in fields.items():
                lines.append(f"        {key}: {json.dumps(value)}\n")
    path = folder / "hosting.yaml"
    path.write_text("".join(lines))
    return path


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def run_labelled(
    name: str, tenant: str, deployment: str, kind: str, *args: str, image: str | None = None
) -> str:
    """Start a detached container with the SPEC labels; returns its id."""
    return docker(
        "run", "-d", "--name", name,
        "--label", f"hosting.tenant={tenant}",
        "--label", f"hosting.deployment={deployment}",
        "--label", f"hosting.type={kind}",
        *args,
    )  # fmt: skip


def remove(names: Iterable[str]) -> None:
    for n in names:
        subprocess.run(["docker", "rm", "-f", "-v", n], capture_output=True, timeout=60)


def rows(store: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    conn = duckdb.connect(str(store), read_only=True)
    try:
        return [tuple(r) for r in conn.execute(sql, params or []).fetchall()]
    finally:
        conn.close()


def wait_for(predicate: Any, timeout: float = 30.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every)
