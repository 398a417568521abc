"""Counter deltas across container lives, and idempotent sample writes (no Docker needed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from hosting.metering.cgroups import Counters
from hosting.metering.containers import Previous, Reading, usage_between
from hosting.metering.ingest import write_metrics
from hosting.metering.samples import MetricSample
from hosting.store import connect
from tests.metering.helpers import rows

T0 = datetime(2026, 11, 5, 10, 0, 0)
LIFE_A = "2026-11-05T09:59:00.000000000Z"
LIFE_B = "2026-11-05T10:00:30.250000000Z"


def _reading(at: datetime, life: str, cpu: int, rx: int, tx: int) -> Reading:
    return Reading("c1", "acme", "shop", "web", life, at, Counters(cpu, 1000, rx, tx))


def test_same_life_gives_the_difference() -> None:
    prev = Previous(LIFE_A, T0, 5_000_000_000, 1000, 2000)
    cur = _reading(T0 + timedelta(seconds=10), LIFE_A, 10_000_000_000, 1500, 9000)
    use = usage_between(prev, cur)
    assert use.cpu_percent == 50.0  # 5 s of CPU in 10 s
    assert (use.rx_bytes, use.tx_bytes) == (500, 7000)


def test_a_restart_counts_the_new_life_from_its_start() -> None:
    prev = Previous(LIFE_A, T0, 50_000_000_000, 10_000_000, 20_000_000)
    # New life started 10:00:30.25; read at 10:01:00.25: 30 s, 15 s of CPU.
    cur = _reading(T0 + timedelta(seconds=60, microseconds=250000), LIFE_B, 15_000_000_000,
                   300, 400)  # fmt: skip
    use = usage_between(prev, cur)
    assert use.cpu_percent == 50.0
    assert (use.rx_bytes, use.tx_bytes) == (300, 400)  # not negative, not added to the old


def test_counters_going_backwards_in_one_life_never_go_negative() -> None:
    prev = Previous(LIFE_A, T0, 50_000_000_000, 10_000, 20_000)
    cur = _reading(T0 + timedelta(seconds=60), LIFE_A, 1_000_000_000, 10, 20)
    use = usage_between(prev, cur)
    assert use.rx_bytes == 10 and use.tx_bytes == 20
    assert use.cpu_percent is not None and use.cpu_percent >= 0


def test_first_sight_too_soon_after_start_has_no_cpu_figure() -> None:
    cur = _reading(datetime(2026, 11, 5, 10, 0, 30, 400000), LIFE_B, 300_000_000, 5, 6)
    use = usage_between(None, cur)
    assert use.cpu_percent is None
    assert (use.rx_bytes, use.tx_bytes) == (5, 6)


def test_samples_are_written_once(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    batch = [
        MetricSample("acme", "shop", T0, cpu_usage=1.0, bandwidth_out=10),
        MetricSample("acme", "api", T0, cpu_usage=2.0, bandwidth_out=20),
        MetricSample("acme", "shop", T0, cpu_usage=9.0, bandwidth_out=99),  # same id
    ]
    with connect(store) as conn:
        assert write_metrics(conn, batch) == 2
        assert write_metrics(conn, batch) == 0
        later = MetricSample("acme", "shop", T0 + timedelta(minutes=1), bandwidth_out=5)
        assert write_metrics(conn, [*batch, later]) == 1
    assert rows(
        store, "SELECT deployment, sum(bandwidth_out) FROM deployment_metrics GROUP BY 1 ORDER BY 1"
    ) == [("api", 20), ("shop", 15)]
