"""`meter import`: SPEC section 4 events into the store, all or nothing, idempotent by id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hosting.metering.ingest import ImportLineError, import_events
from tests.conftest import run_hosting
from tests.metering.helpers import rows, write_spec


def _events(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


SAMPLE = [
    {"id": "e-1", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",
     "metric": "bandwidth_out", "value": 1073741824},
    {"id": "e-2", "deployment": "acme/main", "time": "2026-11-05T12:30:00+02:00",
     "metric": "storage", "storage_type": "database", "value": 5368709120},
    {"id": "e-3", "deployment": "acme/shop", "time": "2026-11-05T10:01:00Z",
     "metric": "cpu_usage", "value": 12.5},
    {"id": "e-4", "deployment": "acme/shop", "time": "2026-11-05T10:01:00Z",
     "metric": "response_time_avg", "value": 45.3},
]  # fmt: skip


def test_each_event_becomes_one_row_with_only_its_column(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    result = import_events(store, _events(tmp_path / "a.jsonl", SAMPLE))
    assert (result.events, result.imported, result.skipped) == (4, 4, 0)
    metrics = rows(
        store,
        'SELECT event_id, tenant, deployment, "timestamp", cpu_usage, memory_usage, bandwidth_in,'
        " bandwidth_out, requests_count, response_time_avg, error_count"
        " FROM deployment_metrics ORDER BY event_id",
    )
    assert metrics == [
        ("e-1", "acme", "shop", datetime(2026, 11, 5, 10, 0), None, None, None, 1073741824,
         None, None, None),
        ("e-3", "acme", "shop", datetime(2026, 11, 5, 10, 1), 12.5, None, None, None, None,
         None, None),
        ("e-4", "acme", "shop", datetime(2026, 11, 5, 10, 1), None, None, None, None, None,
         45.3, None),
    ]  # fmt: skip
    # +02:00 is converted to naive UTC.
    assert rows(store, "SELECT * FROM deployment_storage") == [
        ("e-2", "acme", "main", "database", 5368709120, None, datetime(2026, 11, 5, 10, 30))
    ]


def test_known_ids_are_skipped_and_repeats_in_a_file_count_once(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    import_events(store, _events(tmp_path / "a.jsonl", SAMPLE[:2]))
    again = [*SAMPLE, {**SAMPLE[2], "value": 99.0}]  # e-3 twice: the first one wins
    result = import_events(store, _events(tmp_path / "b.jsonl", again))
    assert (result.events, result.imported, result.skipped) == (5, 2, 3)
    assert rows(store, "SELECT count(*) FROM deployment_metrics") == [(3,)]
    assert rows(store, "SELECT cpu_usage FROM deployment_metrics WHERE event_id = 'e-3'") == [
        (12.5,)
    ]
    # Same id, different time: still "seen before" (SPEC: an id seen before is skipped).
    moved = [{**SAMPLE[0], "time": "2026-11-01T00:00:00Z"}]
    assert import_events(store, _events(tmp_path / "c.jsonl", moved)).imported == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "an event must be a JSON object"),
        ('{"id": "x", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth_out", "value": 1, "extra": 1}', "unknown key"),
        ('{"deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth_out", "value": 1}', "`id` must be a non-empty string"),
        ('{"id": "x", "deployment": "acme", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth_out", "value": 1}', "`deployment` must be TENANT/DEPLOYMENT"),
        ('{"id": "x", "deployment": "acme/shop", "time": "yesterday",'
         ' "metric": "bandwidth_out", "value": 1}', "`time` must be an ISO 8601 time"),
        ('{"id": "x", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth", "value": 1}', "`metric` must be one of"),
        ('{"id": "x", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth_out", "value": "1"}', "`value` must be a number"),
        ('{"id": "x", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "bandwidth_out", "value": -5}', "`value` must not be negative"),
        ('{"id": "x", "deployment": "acme/shop", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "requests_count", "value": 2.5}', "whole number"),
        ('{"id": "x", "deployment": "acme/main", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "storage", "storage_type": "disk", "value": 5}', "`storage_type` must be"),
        ('{"id": "x", "deployment": "acme/main", "time": "2026-11-05T10:00:00Z",'
         ' "metric": "storage", "value": 5}', "`storage_type` must be"),
    ],
)  # fmt: skip
def test_one_bad_line_imports_nothing_and_is_named(tmp_path: Path, line: str, message: str) -> None:
    store = tmp_path / "s.duckdb"
    good = "".join(json.dumps(e) + "\n" for e in SAMPLE[:2])
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n" + json.dumps(SAMPLE[2]) + "\n")
    with pytest.raises(ImportLineError) as err:
        import_events(store, path)
    assert err.value.problems[0][0] == 4  # blank line 3 is fine and still counted
    assert message in err.value.problems[0][1]
    assert rows(store, "SELECT count(*) FROM deployment_metrics") == [(0,)]
    assert rows(store, "SELECT count(*) FROM deployment_storage") == [(0,)]


def test_cli_reports_file_and_line_and_exits_1(tmp_path: Path) -> None:
    write_spec(tmp_path, {"acme": {"shop": {"type": "web", "image": "x", "port": 8080}}})
    good = _events(tmp_path / "good.jsonl", SAMPLE)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(SAMPLE[0]) + "\n" + '{"id": 1,\n')
    proc = run_hosting("meter", "import", "bad.jsonl", cwd=tmp_path)
    assert proc.returncode == 1
    assert "bad.jsonl:2: error: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_hosting("meter", "import", str(good.name), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["imported"] == 4
    proc = run_hosting("meter", "import", str(good.name), cwd=tmp_path)
    assert proc.returncode == 0
    assert "0 imported, 4 skipped" in proc.stdout
    store = tmp_path / ".hosting" / "hosting.duckdb"
    assert rows(store, "SELECT count(*) FROM deployment_metrics") == [(3,)]
    proc = run_hosting("meter", "import", "missing.jsonl", cwd=tmp_path)
    assert proc.returncode == 1 and "missing.jsonl" in proc.stderr


def test_metrics_command_shows_the_history_with_the_product_field_names(tmp_path: Path) -> None:
    write_spec(tmp_path, {"acme": {"shop": {"type": "web", "image": "x", "port": 8080}}})
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [
        {"id": f"r{i}", "deployment": "acme/shop", "metric": "requests_count", "value": 10 + i,
         "time": (now - timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i in (1, 5, 30)
    ]  # fmt: skip
    _events(tmp_path / "r.jsonl", recent)
    assert run_hosting("meter", "import", "r.jsonl", cwd=tmp_path).returncode == 0
    proc = run_hosting("metrics", "acme/shop", "--hours", "24", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["requests_count"] for m in doc["metrics"]] == [15, 11]  # oldest first, 30 h out
    assert set(doc["metrics"][0]) == {
        "timestamp", "cpu_usage", "memory_usage", "bandwidth_in", "bandwidth_out",
        "requests_count", "response_time_avg", "error_count",
    }  # fmt: skip
    assert doc["metrics"][0]["timestamp"].endswith("Z")
    text = run_hosting("metrics", "acme/shop", cwd=tmp_path)
    assert text.returncode == 0 and "2 samples" in text.stdout and "26 requests" in text.stdout
    missing = run_hosting("metrics", "acme/nope", cwd=tmp_path)
    assert missing.returncode == 1 and "unknown deployment `acme/nope`" in missing.stderr
