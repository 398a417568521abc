"""Usage per tenant and window, aggregated inside DuckDB (SPEC §3).

- Bandwidth: the sum of `deployment_metrics.bandwidth_out` with start ≤ timestamp < end
  (NULL where an imported event set another column: it counts as nothing).
- Storage: each `deployment_storage` measurement of a (deployment, storage_type) holds from
  its `last_calculated` until the next one of the same pair (0 before the first; one taken
  before the window carries into it). The integral of the tenant's total over the window, in
  byte·microseconds, is computed exactly (HUGEINT) and divided by the span's length: the
  period's full (nominal) length, so a period cut short by an end or a new term averages its
  days over the whole month instead of inflating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb

from hosting.billing.money import GB, div
from hosting.billing.pricing import Usage

_AGGREGATE = """
WITH w AS (
    SELECT unnest($1::INTEGER[]) AS i, unnest($2::VARCHAR[]) AS tenant,
           unnest($3::TIMESTAMP[]) AS ws, unnest($4::TIMESTAMP[]) AS we
),
bw AS (
    SELECT w.i, sum(m.bandwidth_out)::HUGEINT AS bytes
    FROM w JOIN deployment_metrics m
      ON m.tenant = w.tenant AND m."timestamp" >= w.ws AND m."timestamp" < w.we
    GROUP BY w.i
),
s AS (
    SELECT tenant, size_bytes, last_calculated AS t,
           lead(last_calculated) OVER (
               PARTITION BY tenant, deployment, storage_type
               ORDER BY last_calculated, event_id
           ) AS t_next
    FROM deployment_storage
    WHERE tenant IN (SELECT DISTINCT tenant FROM w)
),
st AS (
    SELECT w.i,
           sum(s.size_bytes::HUGEINT * date_diff(
               'microsecond', greatest(s.t, w.ws), least(coalesce(s.t_next, w.we), w.we)
           )) AS byte_us
    FROM w JOIN s
      ON s.tenant = w.tenant AND s.t < w.we AND (s.t_next IS NULL OR s.t_next > w.ws)
    GROUP BY w.i
)
SELECT w.i, coalesce(bw.bytes, 0)::HUGEINT, coalesce(st.byte_us, 0)::HUGEINT
FROM w LEFT JOIN bw ON bw.i = w.i LEFT JOIN st ON st.i = w.i
"""


@dataclass(frozen=True)
class Window:
    tenant: str
    start: datetime
    end: datetime  # exclusive: usage is counted in [start, end)
    span: datetime  # the storage average is over [start, span)


@dataclass(frozen=True)
class RawUsage:
    bandwidth_bytes: int
    storage_byte_us: int  # byte·microseconds over the window

    def usage(self, window: Window) -> Usage:
        span_us = _micros(window.span - window.start)
        storage = div(self.storage_byte_us, span_us * GB) if span_us > 0 else div(0, 1)
        return Usage(storage_gb=storage, bandwidth_gb=div(self.bandwidth_bytes, GB))


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def aggregate(conn: duckdb.DuckDBPyConnection, windows: Sequence[Window]) -> list[RawUsage]:
    """Usage of every window, in the same order, in one SQL statement."""
    if not windows:
        return []
    params = [
        list(range(len(windows))),
        [w.tenant for w in windows],
        [w.start for w in windows],
        [w.end for w in windows],
    ]
    found = {i: (int(b), int(s)) for i, b, s in conn.execute(_AGGREGATE, params).fetchall()}
    return [RawUsage(*found.get(i, (0, 0))) for i in range(len(windows))]


def storage_level(conn: duckdb.DuckDBPyConnection, tenant: str, at: datetime) -> int:
    """The tenant's total storage in bytes just before `at` (latest measurement of each pair)."""
    row = conn.execute(
        """
        SELECT coalesce(sum(size_bytes), 0)::HUGEINT FROM (
            SELECT arg_max(size_bytes, (last_calculated, event_id)) AS size_bytes
            FROM deployment_storage WHERE tenant = $1 AND last_calculated < $2
            GROUP BY deployment, storage_type
        )
        """,
        [tenant, at],
    ).fetchone()
    return int(row[0]) if row else 0
