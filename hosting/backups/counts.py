"""Row counts of the largest tables, taken in the dump's own snapshot.

A psql session opens a REPEATABLE READ transaction, exports its snapshot, counts rows and
stays open while `pg_dump --snapshot` dumps exactly what it counted: writes running meanwhile
change neither. A restore drill counts the same tables in the restored copy and compares.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable

from hosting.errors import ProviderError

LARGEST = 20  # tables counted per backup, the largest first
END = "hosting-counts-end"


def count_sql(limit: int | None = LARGEST) -> str:
    """One `schema.table|rows` line per user table (exact counts), largest tables first.
    "Largest" by the planner's statistics (relpages, reltuples): sizing a table with
    pg_total_relation_size would wait behind any lock on it, and only the tables picked
    are counted (in the subquery, before any count runs)."""
    cap = f" LIMIT {int(limit)}" if limit else ""
    return (
        "SELECT t.name || '|' || (xpath('/row/c/text()', query_to_xml(format("
        "'SELECT count(*) AS c FROM %I.%I', t.nspname, t.relname), false, true, '')))[1]::text "
        "FROM (SELECT format('%s.%s', n.nspname, c.relname) AS name, n.nspname, c.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%' "
        f"ORDER BY c.relpages DESC, c.reltuples DESC, 1{cap}) t ORDER BY 1;"
    )


def parse(lines: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        name, sep, rows = line.rpartition("|")
        if sep and rows.strip().isdigit():
            out[name] = int(rows)
    return out


class SnapshotSession:
    """The open transaction: `.snapshot` for pg_dump, `.counts` taken in it. Close it (COMMIT)
    once the dump is done; `kill` stops it at a deadline."""

    def __init__(self, argv: list[str], env: dict[str, str], summary: Callable[[bytes], str]):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._summary = summary
        self.snapshot = ""
        self.counts: dict[str, int] = {}

    def start(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        script = (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
            "SELECT pg_export_snapshot();\n"
            f"{count_sql()}\n"
            f"SELECT '{END}';\n"
        )
        try:
            self.proc.stdin.write(script.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # psql already gave up: its stderr says why
        lines: list[str] = []
        while True:
            raw = self.proc.stdout.readline()
            if not raw:
                raise ProviderError(self._failure())
            line = raw.decode(errors="replace").rstrip("\n")
            if line == END:
                break
            if line:
                lines.append(line)
        if not lines:
            raise ProviderError(self._failure())
        self.snapshot = lines[0].strip()
        self.counts = parse(lines[1:])

    def _failure(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        assert self.proc.stderr is not None
        text = self.proc.stderr.read()
        self.kill()
        return self._summary(text)

    def close(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(b"COMMIT;\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Stop it if it still runs, and release its pipes (safe to call twice)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
