"""`hosting store check`: does the store open and read back, are its migrations complete, are
the invoice and credit note numbers gapless, and does every invoice have its sealed document?

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


def _gapless(
    conn: duckdb.DuckDBPyConnection, name: str, what: str, table: str, column: str, counter: str
) -> Finding:
    """Numbers 1…counter, each used exactly once, each number ending in its seq."""
    if not {table, counter} <= _tables(conn):
        return Finding(name, False, f"not checked: the tables {table}, {counter} are missing")
    rows = conn.execute(f"SELECT seq, {column} FROM {table} ORDER BY seq").fetchall()
    counter_row = conn.execute(f"SELECT last_value FROM {counter} WHERE id = 1").fetchone()
    if counter_row is None:
        return Finding(name, False, f"the {what} counter row is missing")
    last = int(counter_row[0])
    seqs = [int(s) for s, _ in rows]
    problems = []
    missing = sorted(set(range(1, last + 1)) - set(seqs))
    if missing:
        problems.append(f"no {what} numbered {_ranges(missing)} (the counter is at {last})")
    beyond = [s for s in seqs if s > last or s < 1]
    if beyond:
        problems.append(f"numbers outside 1–{last}: {_ranges(sorted(beyond))}")
    mislabelled = [n for s, n in rows if not str(n).endswith(f"-{int(s):06d}")]
    if mislabelled:
        problems.append(f"numbers that do not end in their sequence: {', '.join(mislabelled)}")
    if problems:
        return Finding(name, False, "; ".join(problems))
    if not seqs:
        return Finding(name, True, f"no {what}s yet")
    return Finding(name, True, f"1–{last} gapless ({len(seqs)} {what}s, counter at {last})")


def invoice_finding(conn: duckdb.DuckDBPyConnection) -> Finding:
    return _gapless(
        conn,
        "invoice numbers",
        "invoice",
        "billing_invoices",
        "invoice_number",
        "billing_invoice_sequence",
    )


def credit_note_finding(conn: duckdb.DuckDBPyConnection) -> Finding:
    return _gapless(
        conn, "credit notes", "credit note", "credit_notes", "credit_note_number",
        "credit_note_sequence",
    )  # fmt: skip


def document_finding(conn: duckdb.DuckDBPyConnection) -> Finding:
    """Every invoice has a sealed document, its amount is the document's total and its lines
    add up to the document's net: billing_invoices holds the payment state and can change."""
    if not {"invoice_documents", "invoice_seals"} <= _tables(conn):
        return Finding("documents", False, "not checked: the document tables are missing")
    rows = conn.execute(
        "SELECT i.invoice_number, d.invoice_number IS NULL, s.invoice_number IS NULL, "
        "d.total IS DISTINCT FROM i.amount, "
        "d.net IS DISTINCT FROM (SELECT coalesce(sum(amount), 0) FROM invoice_lines l "
        "  WHERE l.invoice_number = i.invoice_number) "
        "FROM billing_invoices i "
        "LEFT JOIN invoice_documents d USING (invoice_number) "
        "LEFT JOIN invoice_seals s ON s.invoice_number = i.invoice_number "
        "ORDER BY i.seq"
    ).fetchall()
    problems = []
    for label, col in (("no document", 1), ("not sealed", 2)):
        found = [r[0] for r in rows if r[col]]
        if found:
            problems.append(f"{label}: {', '.join(found)}")
    amounts = [r[0] for r in rows if not r[1] and r[3]]
    if amounts:
        problems.append(f"amount differs from the issued total: {', '.join(amounts)}")
    lines = [r[0] for r in rows if not r[1] and r[4]]
    if lines:
        problems.append(f"lines do not add up to the issued net: {', '.join(lines)}")
    if problems:
        return Finding("documents", False, "; ".join(problems))
    return Finding("documents", True, f"{len(rows)} issued, sealed, amounts as issued")


def check(store_path: Path) -> CheckReport:
    store_path = store_path.absolute()
    newest = snapfiles.newest(store_path)
    not_checked = tuple(
        Finding(name, False, "not checked: the store does not open")
        for name in ("migrations", "invoice numbers", "credit notes", "documents")
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
            findings = (
                opens,
                migration_finding(conn),
                invoice_finding(conn),
                credit_note_finding(conn),
                document_finding(conn),
            )
        finally:
            conn.close()
    return CheckReport(store_path, findings, newest)
