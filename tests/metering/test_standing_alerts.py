"""`usage` and `status` show the alerts that hold now: storage ≥ 90 %, bandwidth overage and a
restart_loop the health job raised and has not cleared."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from hosting.metering.alerts import Alert, clear_alert, open_alerts, record_alert, standing_alerts
from hosting.spec import load
from hosting.store import connect
from tests.conftest import run_hosting
from tests.metering.helpers import rows, write_spec

GB = 2**30


def _store_with(tmp_path: Path, storage_gb: float, sent_gb: float) -> None:
    write_spec(tmp_path, {"acme": {"site": {"type": "web", "image": "x", "port": 80}}})
    with connect(tmp_path / ".hosting" / "hosting.duckdb") as conn:
        conn.execute(
            "INSERT INTO deployment_storage VALUES"
            " ('s1', 'acme', 'site', 'static', ?, NULL, '2026-11-10 00:00:00')",
            [int(storage_gb * GB)],
        )
        conn.execute(
            'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",'
            " bandwidth_out) VALUES ('m1', 'acme', 'site', '2026-11-10 00:00:00', ?)",
            [int(sent_gb * GB)],
        )


def test_usage_shows_storage_warning_and_bandwidth_overage(tmp_path: Path) -> None:
    # starter: 10 GB storage, 100 GB bandwidth; 9.5 GB is 95 % (warning), 120 GB is over.
    _store_with(tmp_path, 9.5, 120)
    out = run_hosting("usage", "acme", "--as-of", "2026-11-20", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    alerts = {(a["kind"], a["level"]) for a in json.loads(out.stdout)["alerts"]}
    assert alerts == {("storage", "warning"), ("bandwidth", "overage")}
    text = run_hosting("usage", "acme", "--as-of", "2026-11-20", cwd=tmp_path).stdout
    assert "alert: storage warning: storage 95.0% of 10 GB" in text


def test_usage_within_the_plan_has_no_alert(tmp_path: Path) -> None:
    _store_with(tmp_path, 8.9, 99)
    out = run_hosting("usage", "acme", "--as-of", "2026-11-20", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["alerts"] == []


@pytest.mark.docker
def test_status_shows_a_full_tenant(docker_engine: str, tmp_path: Path) -> None:
    _store_with(tmp_path, 10.0, 0)
    out = run_hosting("status", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    alerts = json.loads(out.stdout)["alerts"]
    assert [(a["tenant"], a["kind"], a["level"]) for a in alerts] == [("acme", "storage", "full")]
    text = run_hosting("status", cwd=tmp_path).stdout
    assert "alert: acme storage full: storage 100.0% of 10 GB: new deployments are refused" in text


# The health job's kinds: `record_alert` raises one and sets the level it holds for its tenant
# and kind, `clear_alert` lowers that level to ok. The history (`alerts`, what reports list)
# keeps every raise; `usage`/`status` show only what stands.
T1, T2, T3 = (datetime(2026, 11, 20, h, 0, 0) for h in (9, 10, 11))
LOOP = "acme/site: restarted 3 times in 10 minutes and still failing (HTTP 500)"


def _loop(restarts: int = 3, tenant: str = "acme") -> Alert:
    return Alert(tenant, "restart_loop", "critical", LOOP, restarts, 3)


def test_a_restart_loop_stands_for_its_tenant_until_cleared(tmp_path: Path) -> None:
    site = {"site": {"type": "web", "image": "x", "port": 80}}
    spec = load(write_spec(tmp_path, {"acme": site, "globex": site}))  # nothing measured yet
    store = tmp_path / ".hosting" / "hosting.duckdb"
    day = date(2026, 11, 20)
    with connect(store) as conn:
        record_alert(conn, _loop(), T1)
    assert standing_alerts(store, spec, "acme", day) == [_loop()]
    assert standing_alerts(store, spec, "globex", day) == []  # acme's loop is not globex's
    out = run_hosting("usage", "acme", "--as-of", "2026-11-20", cwd=tmp_path)
    assert f"  alert: restart_loop critical: {LOOP}\n" in out.stdout, out.stderr
    assert rows(store, "SELECT tenant, kind, level, updated_at FROM alert_state") == [
        ("acme", "restart_loop", "critical", T1)
    ]
    with connect(store) as conn:
        clear_alert(conn, "acme", "restart_loop", T2)
    assert standing_alerts(store, spec, "acme", day) == []
    assert rows(store, "SELECT tenant, kind, level, updated_at FROM alert_state") == [
        ("acme", "restart_loop", "ok", T2)  # lowered in place: one level per tenant and kind
    ]
    with connect(store) as conn:
        record_alert(conn, _loop(4), T3)  # looping again: raised anew
    assert standing_alerts(store, spec, "acme", day) == [_loop(4)]
    assert rows(store, "SELECT level, updated_at FROM alert_state") == [("critical", T3)]
    history = rows(
        store,
        'SELECT tenant, kind, level, message, used, "limit", created_at FROM alerts'
        " ORDER BY created_at",
    )
    assert history == [
        ("acme", "restart_loop", "critical", LOOP, 3.0, 3.0, T1),
        ("acme", "restart_loop", "critical", LOOP, 4.0, 3.0, T3),
    ]
    assert len({i for (i,) in rows(store, "SELECT alert_id FROM alerts")}) == 2


def test_clearing_one_kind_leaves_the_others_standing(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    edge = Alert("", "edge_down", "critical", "the edge does not answer: refused", 3, 3)
    with connect(store) as conn:
        record_alert(conn, _loop(), T1)
        record_alert(conn, _loop(5, "globex"), T1)
        record_alert(conn, edge, T1)
        clear_alert(conn, "", "edge_down", T2)
        clear_alert(conn, "globex", "restart_loop", T2)
        standing = open_alerts(conn)
    assert standing == [_loop()]
    assert rows(store, "SELECT tenant, kind, level, updated_at FROM alert_state ORDER BY 1") == [
        ("", "edge_down", "ok", T2),
        ("acme", "restart_loop", "critical", T1),
        ("globex", "restart_loop", "ok", T2),
    ]


def test_an_alert_recorded_without_standing_is_history_only(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    with connect(store) as conn:
        record_alert(conn, _loop(), T1, standing=False)
        standing = open_alerts(conn, "acme")
    assert standing == []
    assert rows(store, "SELECT count(*) FROM alert_state") == [(0,)]
    assert rows(store, "SELECT tenant, level, used, created_at FROM alerts") == [
        ("acme", "critical", 3.0, T1)
    ]
