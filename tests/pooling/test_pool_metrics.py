"""PgBouncer's counts as metric samples: parsed from SHOW POOLS, imported as usage events,
and shown by `hosting metrics` for a pooled database only."""

from __future__ import annotations

import json
from pathlib import Path

from hosting.metering.poolstats import PoolStats, parse_show_pools
from tests.conftest import run_hosting

# psql -A -P footer=off output of PgBouncer 1.18's SHOW POOLS, as the pooler printed it with
# two pools of the served database (two users) and the console's own.
SHOW_POOLS = """\
database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode
db_main|u_acme_main|20|10|0|0|20|0|0|0|0|0|0|3|120000|transaction
db_main|u_acme_main_r1|4|0|0|0|1|0|0|2|1|0|1|0|0|transaction
pgbouncer|pgbouncer|1|0|0|0|0|0|0|0|0|0|0|0|0|statement
"""


def test_show_pools_is_summed_over_the_databases_pools_without_the_console() -> None:
    assert parse_show_pools(SHOW_POOLS) == PoolStats(clients=34, waiting=10, servers=25)
    assert parse_show_pools("") == PoolStats(0, 0, 0)


SPEC = """version: 1
platform: {name: demo, domain: apps.localhost, public_ipv4: 127.0.0.1}
tenants:
  acme:
    name: Acme
    email: a@acme.test
    plan: starter
    started: 2026-11-03
    deployments:
      main: {type: database, pooling: true}
      shop: {type: web, image: x, port: 8080}
"""


def test_pool_events_import_and_show_for_the_pooled_database_only(tmp_path: Path) -> None:
    (tmp_path / "hosting.yaml").write_text(SPEC)
    events = [
        {"id": "p1", "deployment": "acme/main", "time": "2026-11-29T10:00:00Z",
         "metric": "pool_clients", "value": 480},
        {"id": "p2", "deployment": "acme/main", "time": "2026-11-29T10:00:00Z",
         "metric": "pool_waiting", "value": 12},
        {"id": "p3", "deployment": "acme/main", "time": "2026-11-29T10:00:00Z",
         "metric": "pool_servers", "value": 20},
        {"id": "s1", "deployment": "acme/shop", "time": "2026-11-29T10:00:00Z",
         "metric": "requests_count", "value": 5},
    ]  # fmt: skip
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    proc = run_hosting("meter", "import", "e.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = run_hosting("metrics", "acme/main", "--hours", "100000", "--json", cwd=tmp_path)
    [sample] = json.loads(out.stdout)["metrics"]
    assert (sample["pool_clients"], sample["pool_waiting"], sample["pool_servers"]) == (480, 12, 20)
    out = run_hosting("metrics", "acme/shop", "--hours", "100000", "--json", cwd=tmp_path)
    [sample] = json.loads(out.stdout)["metrics"]
    assert not any(k.startswith("pool_") for k in sample)


def test_a_fractional_pool_count_is_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "hosting.yaml").write_text(SPEC)
    event = {"id": "p1", "deployment": "acme/main", "time": "2026-11-29T10:00:00Z",
             "metric": "pool_waiting", "value": 1.5}  # fmt: skip
    (tmp_path / "e.jsonl").write_text(json.dumps(event) + "\n")
    proc = run_hosting("meter", "import", "e.jsonl", cwd=tmp_path)
    assert proc.returncode == 1
    assert "e.jsonl:1:" in proc.stderr and "nothing from this file was imported" in proc.stderr
