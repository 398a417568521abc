"""Storage levels against the plan: warning at 90%, full (no new deployments) at 100%."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from hosting.metering.alerts import check_alerts, current_alerts, storage_status
from hosting.metering.ingest import import_events
from hosting.spec import load
from hosting.store import connect
from tests.conftest import run_hosting
from tests.metering.helpers import rows, write_spec

GB = 2**30


def _storage(tmp_path: Path, name: str, events: list[tuple[str, str, str, str, int]]) -> Path:
    lines = [
        {"id": i, "deployment": d, "time": t, "metric": "storage", "storage_type": k, "value": v}
        for i, d, t, k, v in events
    ]
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def test_levels_use_the_latest_measurement_per_deployment_and_type(tmp_path: Path) -> None:
    spec_file = write_spec(
        tmp_path,
        {"acme": {"shop": {"type": "web", "image": "x", "port": 80}, "db": {"type": "database"}}},
        plan="free",  # 1 GB
    )
    spec = load(spec_file)
    store = tmp_path / "s.duckdb"
    assert storage_status(store, spec, "acme") == (0, GB, 0.0, "ok")
    import_events(store, _storage(tmp_path, "a.jsonl", [
        ("s1", "acme/db", "2026-11-01T00:00:00Z", "database", GB),  # superseded below
        ("s2", "acme/db", "2026-11-02T00:00:00Z", "database", GB // 2),
        ("s3", "acme/shop", "2026-11-02T00:00:00Z", "code", GB * 2 // 5 + 1),
    ]))  # fmt: skip
    used, limit, percent, level = storage_status(store, spec, "acme")
    assert (used, limit, level) == (GB // 2 + GB * 2 // 5 + 1, GB, "warning")
    assert percent == 90.0  # shown rounded: 0.4 byte over, as 0.9 × 2^30 is not whole
    assert [(a.kind, a.level) for a in check_alerts(store, spec)] == [("storage", "warning")]
    assert check_alerts(store, spec) == []  # recorded once, not every cycle
    import_events(store, _storage(tmp_path, "b.jsonl", [
        ("s4", "acme/shop", "2026-11-03T00:00:00Z", "logs", GB // 10),
    ]))  # fmt: skip
    assert storage_status(store, spec, "acme")[3] == "full"
    assert [a.level for a in check_alerts(store, spec)] == ["full"]
    assert rows(store, "SELECT level FROM alerts ORDER BY created_at") == [("warning",), ("full",)]


def test_can_deploy_refuses_at_100_percent_storage(tmp_path: Path) -> None:
    write_spec(tmp_path, {"acme": {"db": {"type": "database"}}}, plan="free")
    assert run_hosting("can-deploy", "acme", "web", cwd=tmp_path).returncode == 0
    _storage(tmp_path, "full.jsonl", [("s1", "acme/db", "2026-11-01T00:00:00Z", "database", GB)])
    assert run_hosting("meter", "import", "full.jsonl", cwd=tmp_path).returncode == 0
    proc = run_hosting("can-deploy", "acme", "web", "--json", cwd=tmp_path)
    assert proc.returncode == 1
    decision = json.loads(proc.stdout)
    assert decision["can_deploy"] is False
    assert "Storage limit exceeded" in decision["reason"]
    proc = run_hosting("storage", "acme", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1.0 GB of 1.0 GB (100.0%)" in proc.stdout and "full" in proc.stdout
    proc = run_hosting("storage", "--json", cwd=tmp_path)
    tenant = json.loads(proc.stdout)["tenants"][0]
    assert (tenant["total_bytes"], tenant["level"]) == (GB, "full")
    assert tenant["storage"][0]["storage_type"] == "database"


def test_bandwidth_over_the_included_amount_is_flagged(tmp_path: Path) -> None:
    spec = load(write_spec(tmp_path, {"acme": {"shop": {"type": "web", "image": "x", "port": 80}}},
                           plan="free"))  # fmt: skip  # 10 GB included
    store = tmp_path / "s.duckdb"
    events = [
        {"id": f"b{i}", "deployment": "acme/shop", "time": f"2026-11-0{i + 2}T00:00:00Z",
         "metric": "bandwidth_out", "value": 4 * GB}
        for i in range(3)
    ]  # fmt: skip
    (tmp_path / "bw.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    import_events(store, tmp_path / "bw.jsonl")
    flagged = check_alerts(store, spec, today=date(2026, 11, 20))
    assert [(a.kind, a.level, a.used) for a in flagged] == [("bandwidth", "overage", 12 * GB)]
    assert check_alerts(store, spec, today=date(2026, 12, 20)) == []  # next period: back to ok


def _levels_at(tmp_path: Path, sizes: list[int]) -> list[tuple[float, str]]:
    """(percent, level) after each of successive measurements of one deployment's code."""
    spec = load(write_spec(tmp_path, {"acme": {"shop": {"type": "web", "image": "x", "port": 80}}},
                           plan="starter"))  # fmt: skip  # 10 GB, so 90 % is a whole byte count
    store = tmp_path / "s.duckdb"
    out = []
    for i, size in enumerate(sizes):
        stamp = f"2026-11-01T00:{i:02d}:00Z"
        import_events(store, _storage(tmp_path, f"{i}.jsonl",
                                      [(f"m{i}", "acme/shop", stamp, "code", size)]))  # fmt: skip
        _, limit, percent, level = storage_status(store, spec, "acme")
        assert limit == 10 * GB
        out.append((percent, level))
    return out


def test_the_storage_warning_starts_exactly_at_90_percent(tmp_path: Path) -> None:
    at = 9 * GB  # 90 % of 10 GB, exactly
    assert _levels_at(tmp_path, [at - 1, at, at + 1]) == [
        (90.0, "ok"),  # shown rounded, but one byte short of the warning
        (90.0, "warning"),
        (90.0, "warning"),
    ]


def test_storage_is_full_exactly_at_100_percent(tmp_path: Path) -> None:
    at = 10 * GB
    assert _levels_at(tmp_path, [at - 1, at, at + 1]) == [
        (100.0, "warning"),
        (100.0, "full"),
        (100.0, "full"),
    ]


def test_bandwidth_overage_starts_one_byte_past_the_included_amount(tmp_path: Path) -> None:
    """The free plan includes 10 GB: exactly 10 GB is not an overage, one byte more is."""
    spec = load(write_spec(tmp_path, {"acme": {"shop": {"type": "web", "image": "x", "port": 80}}},
                           plan="free"))  # fmt: skip
    included = 10 * GB
    seen = []
    for i, sent in enumerate([included - 1, included, included + 1]):
        store = tmp_path / f"s{i}.duckdb"
        event = {"id": f"b{i}", "deployment": "acme/shop", "time": "2026-11-02T00:00:00Z",
                 "metric": "bandwidth_out", "value": sent}  # fmt: skip
        (tmp_path / f"bw{i}.jsonl").write_text(json.dumps(event) + "\n")
        import_events(store, tmp_path / f"bw{i}.jsonl")
        with connect(store, read_only=True) as conn:
            alerts = current_alerts(conn, spec, date(2026, 11, 20))
        [bandwidth] = [a for a in alerts if a.kind == "bandwidth"]
        seen.append((bandwidth.used, bandwidth.level))
    assert seen == [(included - 1, "ok"), (included, "ok"), (included + 1, "overage")]
