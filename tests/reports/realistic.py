"""A realistic store and spec for the report tests: three tenants, a few weeks of 5-minute
samples made with DuckDB's own generators, daily storage measurements with growing logs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hosting.spec import Spec, loads
from hosting.store import connect

XSS = "<script>alert(1)</script>"
XSS_EMAIL = "evil+<i>x</i>@evil.test"  # the email rule allows markup characters
AS_OF = date(2026, 11, 20)

SPEC_YAML = f"""
version: 1
platform:
  name: demo
  domain: apps.example.test
  public_ipv4: 127.0.0.1
tenants:
  acme:
    name: Acme Corp
    email: billing@acme.test
    plan: starter
    started: 2026-10-03
    deployments:
      shop: {{type: web, image: "hosting-demo/web", port: 8080, replicas: 2}}
      api: {{type: api, image: "hosting-demo/api", port: 3000}}
      main: {{type: database}}
      docs: {{type: web, image: "hosting-demo/web", port: 8080}}
  evil:
    name: "{XSS}"
    email: "{XSS_EMAIL}"
    plan: free
    started: 2026-10-10
    deployments:
      site: {{type: web, image: "hosting-demo/web", port: 8080}}
  globex:
    name: Globex
    email: ap@globex.test
    plan: pro
    billing_cycle: yearly
    started: 2026-01-15
    deployments:
      app: {{type: web, image: "hosting-demo/web", port: 8080}}
      db: {{type: database}}
"""


def spec() -> Spec:
    return loads(SPEC_YAML)


def write_spec(folder: Path) -> Path:
    path = folder / "hosting.yaml"
    path.write_text(SPEC_YAML)
    return path


# (tenant, deployment, type, base requests per 5 min, base cpu %)
WORKLOADS = [
    ("acme", "shop", "web", 900, 22.0),
    ("acme", "api", "api", 300, 12.0),
    ("acme", "main", "database", 0, 8.0),
    ("acme", "docs", "web", 0, 0.2),
    ("evil", "site", "web", 40, 2.0),
    ("globex", "app", "web", 2500, 55.0),
    ("globex", "db", "database", 0, 30.0),
]


def build_store(path: Path) -> Path:
    """Samples every 5 minutes from 2026-10-01 to the end of AS_OF, storage daily."""
    with connect(path) as conn:
        for tenant, dep, kind, _, _ in WORKLOADS:
            conn.execute(
                "INSERT INTO deployments (tenant, deployment, deployment_type, status,"
                " health_status) VALUES (?, ?, ?, 'running', 'healthy')",
                [tenant, dep, kind],
            )
        for tenant, dep, _, req, cpu in WORKLOADS:
            # A daily wave (busier in the afternoon), a weekly dip, deterministic noise.
            conn.execute(
                """
                INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",
                    cpu_usage, memory_usage, bandwidth_in, bandwidth_out, requests_count,
                    response_time_avg, error_count)
                SELECT 'm-' || ? || '-' || ? || '-' || i, ?, ?,
                       TIMESTAMP '2026-10-01 00:00:00' + i * INTERVAL 5 MINUTE,
                       greatest(0.0, ? * (1 + 1.2 * wave) + (hash(i, ?) % 100) / 100.0),
                       CAST((180 + 40 * sin(i / 500.0) + (i / 200.0)) * 1048576 AS BIGINT),
                       CAST(? * 2048 * (1 + wave) AS BIGINT),
                       CAST(? * 12288 * (1 + wave) AS BIGINT),
                       CAST(? * (1 + wave) AS BIGINT),
                       CASE WHEN ? = 0 THEN NULL ELSE 35 + 40 * wave + (hash(i, ?) % 15) END,
                       CAST(? * (0.004 + CASE WHEN i % 2016 BETWEEN 1500 AND 1530
                                              THEN 0.2 ELSE 0 END) AS BIGINT)
                FROM (SELECT i, 0.5 * sin(2 * pi() * (i % 288) / 288.0 - 1.2) AS wave
                      FROM range(0, 288 * 51) t(i))
                """,
                [tenant, dep, tenant, dep, cpu, dep, req, req, req, req, dep, req],
            )
        # Storage: code and static fixed, database growing, logs growing fast for acme/shop.
        conn.execute(
            """
            INSERT INTO deployment_storage
            SELECT 's-' || w.t || '-' || w.d || '-' || w.k || '-' || i, w.t, w.d, w.k,
                   CAST(w.base + w.growth * i AS BIGINT), NULL,
                   TIMESTAMP '2026-10-01 03:00:00' + i * INTERVAL 1 DAY
            FROM range(0, 51) r(i),
                 (VALUES ('acme', 'shop', 'code', 150 * 1048576, 0),
                         ('acme', 'shop', 'logs', 300 * 1048576, 60 * 1048576),
                         ('acme', 'shop', 'static', 500 * 1048576, 0),
                         ('acme', 'main', 'database', 1536 * 1048576, 40 * 1048576),
                         ('acme', 'api', 'code', 80 * 1048576, 0),
                         ('acme', 'api', 'cache', 64 * 1048576, 1048576),
                         ('evil', 'site', 'code', 300 * 1048576, 15 * 1048576),
                         ('globex', 'app', 'code', 900 * 1048576, 0),
                         ('globex', 'db', 'database', 42949672960, 150 * 1048576))
                 w(t, d, k, base, growth)
            """
        )
        # Health probes every 10 minutes from Nov 1; acme/api fails for two hours on Nov 12.
        conn.execute(
            """
            INSERT INTO health_checks (tenant, deployment, checked_at, status)
            SELECT w.t, w.d, TIMESTAMP '2026-11-01 00:00:00' + i * INTERVAL 10 MINUTE,
                   CASE WHEN w.d = 'api' AND i BETWEEN 1584 AND 1595 THEN 'unhealthy'
                        ELSE 'healthy' END
            FROM range(0, 144 * 20) r(i),
                 (VALUES ('acme', 'shop'), ('acme', 'api'), ('acme', 'main')) w(t, d)
            """
        )
        # The agent's alerts (0002_metering.sql): evil filled its storage on Nov 17.
        conn.execute(
            """
            INSERT INTO alerts VALUES
              ('a1', 'evil', 'storage', 'warning', 'storage at 90% of the plan',
               966367641.6, 1073741824, TIMESTAMP '2026-11-10 03:00:00'),
              ('a2', 'evil', 'storage', 'full', 'storage full: writes may fail',
               1073741824, 1073741824, TIMESTAMP '2026-11-17 03:00:00')
            """
        )
    return path
