"""`hosting store check`: does the store open and read back, are its migrations complete, and
are the invoice numbers gapless?

It opens the file read-only and migrates nothing: a check that ran the missing migrations
first could only ever report them complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from hosting.store import _gate, _open, damage, migrations, snapfiles
from hosting.store.damage import DamagedStoreError
from hosting.store.snapfiles import Snapshot
from hosting.store.snapshots import read_everything

CHECK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    store: Path
    findings: tuple[Finding, ...]
    newest_snapshot: Snapshot | None

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] → "3–5, 9"."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def migration_finding(conn: duckdb.DuckDBPyConnection) -> Finding:
    shipped = [name for name, _ in migrations()]
    recorded: set[str] = set()
    if "schema_migrations" in _tables(conn):
        recorded = {r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()}
    missing = [n for n in shipped if n not in recorded]
    unknown = sorted(recorded - set(shipped))
    problems = []
    if missing:
        tail = missing == shipped[len(shipped) - len(missing) :]
        later = " (the next command that writes to the store applies them)" if tail else ""
        problems.append(f"not recorded: {', '.join(missing)}{later}")
    if unknown:
        problems.append(f"from a newer hosting: {', '.join(unknown)}")
    if problems:
        return Finding("migrations", False, "; ".join(problems))
    return Finding("migrations", True, f"{len(shipped)} of {len(shipped)}, newest {shipped[-1]}")


def invoice_finding(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Numbers 1…counter, each used exactly once, each invoice's number ending in its seq."""
    if not {"billing_invoices", "billing_invoice_sequence"} <= _tables(conn):
        return Finding("invoice numbers", False, "not checked: the billing tables are missing")
    rows = conn.execute("SELECT seq, invoice_number FROM billing_invoices ORDER BY seq").fetchall()
    counter_row = conn.execute(
        "SELECT last_value FROM billing_invoice_sequence WHERE id = 1"
    ).fetchone()
    if counter_row is None:
        return Finding("invoice numbers", False, "the invoice counter row is missing")
    counter = int(counter_row[0])
    seqs = [int(s) for s, _ in rows]
    problems = []
    missing = sorted(set(range(1, counter + 1)) - set(seqs))
    if missing:
        problems.append(f"no invoice numbered {_ranges(missing)} (the counter is at {counter})")
    beyond = [s for s in seqs if s > counter or s < 1]
    if beyond:
        problems.append(f"numbers outside 1–{counter}: {_ranges(sorted(beyond))}")
    mislabelled = [n for s, n in rows if not str(n).endswith(f"-{int(s):06d}")]
    if mislabelled:
        problems.append(f"numbers that do not end in their sequence: {', '.join(mislabelled)}")
    if problems:
        return Finding("invoice numbers", False, "; ".join(problems))
    if not seqs:
        return Finding("invoice numbers", True, "no invoices yet")
    return Finding(
        "invoice numbers", True, f"1–{counter} gapless ({len(seqs)} invoices, counter at {counter})"
    )


def check(store_path: Path) -> CheckReport:
    store_path = store_path.absolute()
    newest = snapfiles.newest(store_path)
    not_checked = (
        Finding("migrations", False, "not checked: the store does not open"),
        Finding("invoice numbers", False, "not checked: the store does not open"),
    )
    if not store_path.exists():
        opens = Finding("opens", False, f"there is no store at {store_path}")
        return CheckReport(store_path, (opens, *not_checked), newest)
    deadline = time.monotonic() + CHECK_WAIT_SECONDS
    with _gate(store_path, deadline):
        try:
            conn = _open(store_path, True, deadline)
        except DamagedStoreError as exc:
            return CheckReport(
                store_path, (Finding("opens", False, exc.message), *not_checked), newest
            )
        try:
            try:
                rows = read_everything(conn)
            except duckdb.Error as exc:
                why = damage.first_line(exc)
                opens = Finding("opens", False, f"reading it back failed: {why}")
                return CheckReport(store_path, (opens, *not_checked), newest)
            size = store_path.stat().st_size
            opens = Finding("opens", True, f"{size} bytes; {rows} rows read back")
            findings = (opens, migration_finding(conn), invoice_finding(conn))
        finally:
            conn.close()
    return CheckReport(store_path, findings, newest)
