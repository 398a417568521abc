"""Storage levels against the plan: warning at 90%, full (no new deployments) at 100%."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hosting.errors import NotFoundError
from hosting.metering.alerts import (
    check_alerts,
    current_alerts,
    latest_storage,
    open_alerts,
    standing_alerts,
    storage_refusal,
    storage_status,
)
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


def _site_spec(tmp_path: Path, plan: str = "starter", plans: str = "") -> Path:
    path = write_spec(
        tmp_path,
        {
            "acme": {"shop": {"type": "web", "image": "x", "port": 80}},
            "globex": {"site": {"type": "web", "image": "x", "port": 80}},
        },
        plan=plan,
    )
    if plans:
        path.write_text(path.read_text().replace("tenants:\n", plans + "tenants:\n", 1))
    return path


def test_the_latest_rows_carry_names_sizes_and_file_counts(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    import_events(store, _storage(tmp_path, "a.jsonl", [
        ("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", 10),
        ("s2", "acme/shop", "2026-11-02T00:00:00Z", "code", 20),
        ("s3", "acme/shop", "2026-11-01T00:00:00Z", "logs", 5),
    ]))  # fmt: skip
    with connect(store) as conn:
        conn.execute("UPDATE deployment_storage SET file_count = 7 WHERE event_id = 's2'")
        rows = latest_storage(conn, "acme")
    assert [row[:4] for row in rows] == [("shop", "code", 20, 7), ("shop", "logs", 5, None)]


def test_storage_percent_is_shown_to_two_places_and_unknown_tenants_are_named(
    tmp_path: Path,
) -> None:
    spec = load(_site_spec(tmp_path))  # 10 GB
    store = tmp_path / "s.duckdb"
    third = 10 * GB // 3
    import_events(
        store,
        _storage(tmp_path, "a.jsonl", [("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", third)]),
    )
    assert storage_status(store, spec, "acme") == (third, 10 * GB, 33.33, "ok")
    with pytest.raises(NotFoundError, match="unknown tenant `nobody`"):
        storage_status(store, spec, "nobody")


def test_a_plan_with_no_storage_is_full_at_the_first_byte(tmp_path: Path) -> None:
    spec = load(_site_spec(tmp_path, plans="plans:\n  starter:\n    storage_gb: 0\n"))
    store = tmp_path / "s.duckdb"
    with connect(store):
        pass
    assert storage_status(store, spec, "acme") == (0, 0, 0.0, "ok")
    with connect(store, read_only=True) as conn:
        [storage] = [a for a in current_alerts(conn, spec, date(2026, 11, 2), ["acme"])
                     if a.kind == "storage"]  # fmt: skip
    assert (storage.level, storage.message) == ("ok", "storage within the plan")
    import_events(
        store,
        _storage(tmp_path, "a.jsonl", [("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", 1)]),
    )
    assert storage_status(store, spec, "acme") == (1, 0, 100.0, "full")
    with connect(store, read_only=True) as conn:
        [storage] = [a for a in current_alerts(conn, spec, date(2026, 11, 2), ["acme"])
                     if a.kind == "storage"]  # fmt: skip
    assert storage.level == "full"
    assert storage.message == "storage 100.0% of 0 GB: new deployments are refused"


def test_alerts_say_what_holds_in_words(tmp_path: Path) -> None:
    """The messages `usage` and `status` print, for each storage level and for bandwidth."""
    spec = load(_site_spec(tmp_path, plan="free"))  # 1 GB storage, 10 GB bandwidth
    store = tmp_path / "s.duckdb"
    day = date(2026, 11, 20)

    def messages(tenants: list[str] | None = None) -> dict[tuple[str, str], str]:
        with connect(store, read_only=True) as conn:
            found = current_alerts(conn, spec, day, tenants)
        return {(a.tenant, a.kind): f"{a.level}: {a.message}" for a in found}

    with connect(store):
        pass
    assert messages(["acme"]) == {
        ("acme", "storage"): "ok: storage within the plan",
        ("acme", "bandwidth"): "ok: bandwidth within the plan",
    }
    sent = {"id": "b1", "deployment": "acme/shop", "time": "2026-11-05T00:00:00Z",
            "metric": "bandwidth_out", "value": 12 * GB + GB // 2}  # fmt: skip
    (tmp_path / "bw.jsonl").write_text(json.dumps(sent) + "\n")
    import_events(store, tmp_path / "bw.jsonl")
    import_events(
        store,
        _storage(
            tmp_path,
            "w.jsonl",
            [("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", GB * 19 // 20)],
        ),
    )
    assert messages() == {
        ("acme", "storage"): "warning: storage 95.0% of 1 GB: over 90%",
        ("acme", "bandwidth"): "overage: bandwidth 12.50 GB exceeds the included 10 GB this"
        " period (2026-11-01 to 2026-12-01); overage is billed at $0.05/GB",
        ("globex", "storage"): "ok: storage within the plan",
        ("globex", "bandwidth"): "ok: bandwidth within the plan",
    }
    import_events(
        store,
        _storage(tmp_path, "f.jsonl", [("s2", "acme/shop", "2026-11-02T00:00:00Z", "code", GB)]),
    )
    assert messages(["acme"])[("acme", "storage")] == (
        "full: storage 100.0% of 1 GB: new deployments are refused"
    )


def test_bandwidth_counts_from_the_first_day_of_the_tenancy(tmp_path: Path) -> None:
    """Tenants start on 2026-01-01: on that very day the period's bandwidth is checked."""
    spec = load(_site_spec(tmp_path, plan="free"))
    store = tmp_path / "s.duckdb"
    with connect(store) as conn:
        before = {a.tenant for a in current_alerts(conn, spec, date(2025, 12, 31))
                  if a.kind == "bandwidth"}  # fmt: skip
        on_day = {a.tenant for a in current_alerts(conn, spec, date(2026, 1, 1))
                  if a.kind == "bandwidth"}  # fmt: skip
    assert (before, on_day) == (set(), {"acme", "globex"})


def test_recorded_alerts_have_their_own_ids_and_utc_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamped in UTC even where the machine's clock is set twelve hours away from it."""
    monkeypatch.setenv("TZ", "Etc/GMT+12")
    time.tzset()
    try:
        spec = load(_site_spec(tmp_path, plan="free"))
        store = tmp_path / "s.duckdb"
        import_events(store, _storage(tmp_path, "a.jsonl", [
            ("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", GB),
            ("s2", "globex/site", "2026-11-01T00:00:00Z", "code", GB),
        ]))  # fmt: skip
        before = datetime.now(UTC).replace(tzinfo=None)
        assert len(check_alerts(store, spec, today=date(2026, 11, 2))) == 2
        after = datetime.now(UTC).replace(tzinfo=None)
        recorded = rows(store, "SELECT alert_id, created_at FROM alerts")
        states = rows(store, "SELECT updated_at FROM alert_state")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert len({alert_id for alert_id, _ in recorded}) == 2
    assert all(before <= stamp <= after for _, stamp in recorded)
    assert all(before <= stamp <= after for (stamp,) in states)


def test_refusal_standing_and_open_alerts_in_process(tmp_path: Path) -> None:
    """What `can-deploy`, `usage`/`status` and `alerts` read, without a subprocess between."""
    spec = load(_site_spec(tmp_path, plan="free"))  # 1 GB
    store = tmp_path / "s.duckdb"
    day = date(2026, 11, 20)
    assert standing_alerts(store, spec, "acme", day) == []  # no store yet
    assert storage_refusal(store, spec, "acme") is None
    import_events(store, _storage(tmp_path, "w.jsonl", [
        ("s1", "acme/shop", "2026-11-01T00:00:00Z", "code", GB - 1),
    ]))  # fmt: skip
    assert storage_refusal(store, spec, "acme") is None  # a byte short of full
    assert [(a.tenant, a.kind, a.level) for a in standing_alerts(store, spec, "acme", day)] == [
        ("acme", "storage", "warning")
    ]
    assert standing_alerts(store, spec, "globex", day) == []
    check_alerts(store, spec, today=day)
    import_events(store, _storage(tmp_path, "f.jsonl", [
        ("s2", "acme/shop", "2026-11-02T00:00:00Z", "code", GB),
        ("s3", "globex/site", "2026-11-02T00:00:00Z", "code", GB + 5),
    ]))  # fmt: skip
    assert storage_refusal(store, spec, "acme") == "Storage limit exceeded: 100.0% of 1 GB used"
    check_alerts(store, spec, today=day)
    with connect(store, read_only=True) as conn:
        everyone = [
            (a.tenant, a.kind, a.level, a.message, a.used, a.limit) for a in open_alerts(conn)
        ]
        acme = [(a.tenant, a.level) for a in open_alerts(conn, "acme")]
    full = "storage 100.0% of 1 GB: new deployments are refused"
    assert everyone == [
        ("acme", "storage", "full", full, GB, GB),
        ("globex", "storage", "full", full, GB + 5, GB),
    ]
    assert acme == [("acme", "full")]
    import_events(store, _storage(tmp_path, "ok.jsonl", [
        ("s4", "acme/shop", "2026-11-03T00:00:00Z", "code", 0),
    ]))  # fmt: skip
    check_alerts(store, spec, today=day)  # back to ok: acme's alert no longer stands
    with connect(store, read_only=True) as conn:
        assert [(a.tenant, a.level) for a in open_alerts(conn)] == [("globex", "full")]


def test_standing_alerts_are_those_of_the_day_asked_about(tmp_path: Path) -> None:
    """An overage in January stands on a January day, whatever the date is today."""
    spec = load(_site_spec(tmp_path, plan="free"))  # 10 GB of bandwidth
    store = tmp_path / "s.duckdb"
    sent = {"id": "b1", "deployment": "acme/shop", "time": "2026-01-05T00:00:00Z",
            "metric": "bandwidth_out", "value": 11 * GB}  # fmt: skip
    (tmp_path / "bw.jsonl").write_text(json.dumps(sent) + "\n")
    import_events(store, tmp_path / "bw.jsonl")
    standing = standing_alerts(store, spec, "acme", date(2026, 1, 15))
    assert [(a.kind, a.level, a.used) for a in standing] == [("bandwidth", "overage", 11 * GB)]
    assert standing_alerts(store, spec, "acme", date(2026, 2, 15)) == []
