"""Batched, idempotent writes of samples and the import of usage-event files (SPEC section 4).

Why this shape:
- Rows never go in one by one (DuckDB manages about a thousand single-row INSERTs a second
  here). Collector samples travel as one list per column, unnested by DuckDB inside a single
  INSERT … SELECT; an event file is split, parsed and validated by DuckDB itself, so Python
  never touches a million lines.
- Idempotency is an anti-join on `event_id` against both usage tables, inside the same
  transaction as the insert, plus "first occurrence wins" inside a batch. An id seen before,
  whatever its time, is skipped (SPEC section 4). The anti-join is a hash join of the batch
  against the `event_id` column alone (columnar: only that column is scanned), which is what
  keeps a million-event import above 500k rows/s; see bench/bench_ingest.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from hosting.errors import MeteringError
from hosting.metering.samples import METRICS, STORAGE_TYPES, MetricSample, StorageSample
from hosting.store import connect, transaction

_NOT_SEEN = (
    " NOT EXISTS (SELECT 1 FROM deployment_metrics m WHERE m.event_id = b.event_id)"
    " AND NOT EXISTS (SELECT 1 FROM deployment_storage s WHERE s.event_id = b.event_id)"
)
_FIRST_IN_BATCH = " QUALIFY row_number() OVER (PARTITION BY b.event_id ORDER BY b.ord) = 1"


def _count(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object]) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _insert_new(
    conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[tuple[str, str, list[object]]]
) -> int:
    """Insert one batch given as (column, SQL type, values) lists, skipping ids seen before
    and repeats inside the batch; returns how many rows were new."""
    unnested = ", ".join(
        f"unnest(${i}::{sql_type}[]) AS {name}" for i, (name, sql_type, _) in enumerate(columns, 1)
    )
    names = ", ".join(f'"{name}"' for name, _, _ in columns)
    batch = f"SELECT {unnested}, generate_subscripts($1::VARCHAR[], 1) AS ord"
    return _count(
        conn,
        f"INSERT INTO {table} ({names}) SELECT {names}"
        f" FROM ({batch}) b WHERE{_NOT_SEEN}{_FIRST_IN_BATCH}",
        [values for _, _, values in columns],
    )


def write_metrics(conn: duckdb.DuckDBPyConnection, samples: Sequence[MetricSample]) -> int:
    """Insert the samples not stored yet, in one statement; returns how many were new.

    The caller owns the transaction, so collector state commits together with its samples.
    """
    if not samples:
        return 0
    return _insert_new(
        conn,
        "deployment_metrics",
        [
            ("event_id", "VARCHAR", [s.event_id for s in samples]),
            ("tenant", "VARCHAR", [s.tenant for s in samples]),
            ("deployment", "VARCHAR", [s.deployment for s in samples]),
            ("timestamp", "TIMESTAMP", [s.timestamp for s in samples]),
            ("cpu_usage", "DOUBLE", [s.cpu_usage for s in samples]),
            ("memory_usage", "BIGINT", [s.memory_usage for s in samples]),
            ("bandwidth_in", "BIGINT", [s.bandwidth_in for s in samples]),
            ("bandwidth_out", "BIGINT", [s.bandwidth_out for s in samples]),
            ("requests_count", "BIGINT", [s.requests_count for s in samples]),
            ("response_time_avg", "DOUBLE", [s.response_time_avg for s in samples]),
            ("error_count", "BIGINT", [s.error_count for s in samples]),
            ("pool_clients", "BIGINT", [s.pool_clients for s in samples]),
            ("pool_waiting", "BIGINT", [s.pool_waiting for s in samples]),
            ("pool_servers", "BIGINT", [s.pool_servers for s in samples]),
        ],
    )


def write_storage(conn: duckdb.DuckDBPyConnection, samples: Sequence[StorageSample]) -> int:
    """Insert storage measurements not stored yet; returns how many were new."""
    if not samples:
        return 0
    return _insert_new(
        conn,
        "deployment_storage",
        [
            ("event_id", "VARCHAR", [s.event_id for s in samples]),
            ("tenant", "VARCHAR", [s.tenant for s in samples]),
            ("deployment", "VARCHAR", [s.deployment for s in samples]),
            ("storage_type", "VARCHAR", [s.storage_type for s in samples]),
            ("size_bytes", "BIGINT", [s.size_bytes for s in samples]),
            ("file_count", "BIGINT", [s.file_count for s in samples]),
            ("last_calculated", "TIMESTAMP", [s.last_calculated for s in samples]),
        ],
    )


# --- usage-event files ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    file: str
    events: int  # valid events in the file
    imported: int  # new rows written
    skipped: int  # ids already stored (or repeated within the file)


class ImportLineError(MeteringError):
    """Bad lines in an event file: each reported as `FILE:LINE: error: MESSAGE`."""

    def __init__(self, file: str, problems: list[tuple[int, str]], total: int) -> None:
        self.file = file
        self.problems = problems
        self.total = total
        first_line, first_msg = problems[0]
        more = f" (and {total - 1} more)" if total > 1 else ""
        super().__init__(
            f"{file}:{first_line}: {first_msg}{more}",
            "fix the line(s); nothing from this file was imported",
        )

    def lines(self) -> list[str]:
        out = [f"{self.file}:{n}: error: {msg}" for n, msg in self.problems]
        if self.total > len(self.problems):
            out.append(f"error: {self.total - len(self.problems)} more bad lines not shown")
        out.append("error: nothing from this file was imported (fix the lines and run again)")
        return out


_WHOLE_METRICS = (
    "memory_usage",
    "bandwidth_in",
    "bandwidth_out",
    "requests_count",
    "error_count",
    "pool_clients",
    "pool_waiting",
    "pool_servers",
    "storage",
)
_KEYS = ("id", "deployment", "time", "metric", "value", "storage_type")
_LABEL = "[a-z]([a-z0-9-]{0,38}[a-z0-9])?"


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


_STRUCTURE = "{" + ", ".join(f'"{k}": "JSON"' for k in _KEYS) + "}"

# The file's lines, numbered. Splitting is one thread; a table lets the checks run in parallel.
_LINES = """
CREATE TEMP TABLE imp_lines AS
SELECT line_no, rtrim(line, chr(13)) AS line FROM (
    SELECT generate_subscripts(l, 1) AS line_no, unnest(l) AS line
    FROM (SELECT string_split(content, chr(10)) AS l FROM {source})
) WHERE trim(line) <> ''
"""

_TYPES = {"value": "JSON"}  # its text tells a number from a string; the rest are strings
_STRUCTURE = "{" + ", ".join(f'"{k}": "{_TYPES.get(k, "VARCHAR")}"' for k in _KEYS) + "}"

# The numbered path: every line of the file, each parsed once into a struct (plus once for its
# keys), so a bad line can be named. `{fields}` in _PARSE is replaced by one of the sources.
_NUMBERED_FIELDS = f"""
checked AS (
    -- DuckDB may evaluate both branches of a CASE, so lines that are not objects become {{}}.
    SELECT line_no, json_valid(line) AS valid,
        CASE WHEN json_valid(line) THEN json_type(line) END AS jt,
        CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN line ELSE '{{}}' END
            AS obj
    FROM imp_lines
), parsed AS (
    SELECT line_no, valid, jt, list_has_all({_sql_list(_KEYS)}, json_keys(obj)) AS keys_ok,
        from_json(obj, '{_STRUCTURE}') AS f
    FROM checked
), fields AS (
    SELECT line_no, valid, jt, keys_ok, f.id AS id, f.deployment AS dep, f.time AS tm,
        f.metric AS metric, f.storage_type AS st, f.value AS value
    FROM parsed
"""

# The fast path: DuckDB's parallel NDJSON reader with typed columns (no line numbers). It is
# used only after one aggregate over the same file found every line an object with known keys.
_FAST_KEYS = (
    f"SELECT coalesce(bool_and(json_type(json) = 'OBJECT'"
    f" AND list_has_all({_sql_list(_KEYS)}, json_keys(json))), true)"
    " FROM read_ndjson_objects({path})"
)
_FAST_FIELDS = (
    "fields AS (SELECT 0 AS line_no, true AS valid, 'OBJECT' AS jt, true AS keys_ok, id,"
    " deployment AS dep, time AS tm, metric, storage_type AS st, value::VARCHAR AS value"
    " FROM read_json({path}, format = 'newline_delimited', columns = {"
    + ", ".join(f"{k}: '{_TYPES.get(k, 'VARCHAR')}'" for k in _KEYS)
    + "})\n"
)

# Each line becomes one row; `problem` is the first thing wrong with it, or NULL.
_PARSE = f"""
CREATE TEMP TABLE imp AS
WITH {{fields}}
), typed AS (
    SELECT line_no, valid, jt, keys_ok, id, dep, TRY_CAST(tm AS TIMESTAMPTZ) AS tz, tm, metric,
        st, regexp_full_match(value, '-?[0-9][0-9.eE+-]*') AS v_ok,
        TRY_CAST(value AS DOUBLE) AS vd,
        CASE WHEN regexp_full_match(value, '-?[0-9]+') THEN TRY_CAST(value AS BIGINT) END AS vi
    FROM fields
)
SELECT line_no, id, dep, metric, st, vd,
    coalesce(vi, CASE WHEN vd = floor(vd) AND abs(vd) < 9e18 THEN vd::BIGINT END) AS vi,
    timezone('UTC', tz) AS ts,
    CASE
        WHEN NOT valid THEN 'not valid JSON'
        WHEN jt <> 'OBJECT' THEN 'an event must be a JSON object'
        WHEN NOT keys_ok THEN 'unknown key (known: {", ".join(_KEYS)})'
        WHEN coalesce(id, '') = '' THEN '`id` must be a non-empty string'
        WHEN NOT coalesce(regexp_full_match(dep, '{_LABEL}/{_LABEL}'), false)
            THEN '`deployment` must be TENANT/DEPLOYMENT (e.g. acme/shop)'
        WHEN tz IS NULL OR NOT regexp_matches(tm, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
            THEN '`time` must be an ISO 8601 time (e.g. 2026-11-05T10:00:00Z)'
        WHEN NOT coalesce(list_contains({_sql_list([*METRICS, "storage"])}, metric), false)
            THEN '`metric` must be one of {", ".join([*METRICS, "storage"])}'
        WHEN NOT coalesce(v_ok, false) OR vd IS NULL THEN '`value` must be a number'
        WHEN vd < 0 THEN '`value` must not be negative'
        WHEN list_contains({_sql_list(_WHOLE_METRICS)}, metric)
            AND coalesce(vi, CASE WHEN vd = floor(vd) AND abs(vd) < 9e18 THEN 1 END) IS NULL
            THEN '`value` must be a whole number of ' || metric
        WHEN metric = 'storage'
            AND NOT coalesce(list_contains({_sql_list(STORAGE_TYPES)}, st), false)
            THEN '`storage_type` must be one of {", ".join(STORAGE_TYPES)}'
        WHEN metric <> 'storage' AND st IS NOT NULL
            THEN '`storage_type` belongs only to metric storage'
        {{known}}
    END AS problem
FROM typed
"""

_FRESH = f"""
CREATE TEMP TABLE fresh AS
SELECT b.* FROM (SELECT id AS event_id, line_no AS ord, * FROM imp) b
WHERE{_NOT_SEEN}{_FIRST_IN_BATCH}
"""


def _metric_column(name: str) -> str:
    value = "vd" if name in ("cpu_usage", "response_time_avg") else "vi"
    return f"CASE WHEN metric = '{name}' THEN {value} END"


_INSERT_METRICS = (
    'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp", '
    + ", ".join(METRICS)
    + ") SELECT event_id, split_part(dep, '/', 1), split_part(dep, '/', 2), ts, "
    + ", ".join(_metric_column(m) for m in METRICS)
    + " FROM fresh WHERE metric <> 'storage'"
)
_INSERT_STORAGE = (
    "INSERT INTO deployment_storage (event_id, tenant, deployment, storage_type, size_bytes,"
    " file_count, last_calculated) SELECT event_id, split_part(dep, '/', 1),"
    " split_part(dep, '/', 2), st, vi, NULL, ts FROM fresh WHERE metric = 'storage'"
)

MAX_REPORTED = 20


# Usage can only be of a tenant the operator has (in the file, or in the billing history:
# a tenant removed since still bills its past) and only up to now. Tenant ids are DNS labels,
# so they are safe as SQL literals. A little clock skew between machines is tolerated.
_FUTURE_GRACE = timedelta(minutes=5)


def _known_checks(conn: duckdb.DuckDBPyConnection, tenants: Collection[str] | None) -> str:
    latest = (datetime.now(UTC).replace(tzinfo=None) + _FUTURE_GRACE).replace(microsecond=0)
    checks = ""
    if tenants is not None:
        known = set(tenants) | {
            str(r[0])
            for r in conn.execute("SELECT DISTINCT tenant FROM subscription_history").fetchall()
        }
        known = {t for t in known if re.fullmatch(_LABEL, t)}
        checks += (
            f"WHEN NOT list_contains({_sql_list(sorted(known))}, split_part(dep, '/', 1))"
            " THEN 'tenant `' || split_part(dep, '/', 1) ||"
            " '` is neither in the file nor in the billing history'\n"
        )
    checks += (
        f"WHEN ts > TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'"
        f" THEN '`time` is after now ({latest - _FUTURE_GRACE:%Y-%m-%dT%H:%M:%SZ}):"
        " usage cannot come from the future'"
    )
    return checks


def import_events(
    store_path: Path,
    file: Path,
    *,
    display_name: str | None = None,
    tenants: Collection[str] | None = None,
) -> ImportResult:
    """Import a JSON Lines event file all or nothing; ids already stored are skipped.

    Fast path: DuckDB's parallel NDJSON reader and set-wise checks. Only when that finds a
    problem does the file go through the numbered path, which names every bad line.
    `tenants` (the file's) turns on the unknown-tenant check; a time after now is always bad.
    """
    name = display_name or str(file)
    try:
        with file.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise MeteringError(f"cannot read {name}: {exc.strerror or exc}") from None
    literal = "'" + str(file.resolve()).replace("'", "''") + "'"
    globless = not any(c in str(file) for c in "*?[]{}")  # the readers take globs
    with connect(store_path) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        parse = _PARSE.replace("{known}", _known_checks(conn, tenants))
        with transaction(conn):
            clean = False
            if globless:
                try:
                    keys_ok = conn.execute(_FAST_KEYS.replace("{path}", literal)).fetchone()
                    if keys_ok and keys_ok[0]:
                        fields = _FAST_FIELDS.replace("{path}", literal)
                        conn.execute(parse.replace("{fields}", fields))
                        clean = not conn.execute(
                            "SELECT 1 FROM imp WHERE problem IS NOT NULL LIMIT 1"
                        ).fetchall()
                except duckdb.Error:  # not JSON, or a value of the wrong shape
                    clean = False
                if not clean:
                    conn.execute("ROLLBACK")
                    conn.execute("BEGIN TRANSACTION")
            if not clean:
                source, params = f"read_text({literal})", list[object]()
                if not globless:
                    source = "(SELECT $1 AS content)"
                    params = [file.read_text(encoding="utf-8", errors="replace")]
                conn.execute(_LINES.replace("{source}", source), params)
                conn.execute(parse.replace("{fields}", _NUMBERED_FIELDS))
                _raise_bad_lines(conn, name)
            events = _count(conn, "SELECT count(*) FROM imp", [])
            # The window that keeps the first of repeated ids costs three times the anti-join;
            # most files repeat none, which one hash aggregate tells.
            repeats = conn.execute(
                "SELECT 1 FROM imp GROUP BY id HAVING count(*) > 1 LIMIT 1"
            ).fetchall()
            conn.execute(_FRESH if repeats else _FRESH.replace(_FIRST_IN_BATCH, ""))
            imported = _count(conn, _INSERT_METRICS, [])
            imported += _count(conn, _INSERT_STORAGE, [])
            for table in ("fresh", "imp", "imp_lines"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
    return ImportResult(name, events, imported, events - imported)


def _raise_bad_lines(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    bad = conn.execute(
        "SELECT line_no, problem FROM imp WHERE problem IS NOT NULL ORDER BY line_no"
        f" LIMIT {MAX_REPORTED}"
    ).fetchall()
    if bad:
        total = _count(conn, "SELECT count(*) FROM imp WHERE problem IS NOT NULL", [])
        raise ImportLineError(name, [(int(n), str(p)) for n, p in bad], total)
