"""The usage and platform reports built from a realistic store, checked against numbers
worked out by hand from how tests/reports/realistic.py generates the data."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from pathlib import Path

from hosting.reports import api
from hosting.spec import loads
from tests.reports.realistic import AS_OF, SPEC_YAML, XSS, XSS_EMAIL

NOW = datetime(2026, 11, 21, 8, 0)


def _usage(folder: Path, tenant: str, as_of: date = AS_OF) -> str:
    return api.usage_html(loads(SPEC_YAML), folder / ".hosting/hosting.duckdb", tenant, as_of, NOW)


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    without_tags = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(without_tags))


def test_usage_report_numbers(realistic_dir: Path) -> None:
    page = _usage(realistic_dir, "acme")
    text = _text(page)
    # Period: anchor day 3 → Nov 3 up to (not including) Dec 3; data up to the end of Nov 20.
    assert "period 2026-11-03 – 2026-12-02" in text
    # Storage at Nov 20 03:00 (day 50): code 150 + logs 300+60·50 + static 500
    # + database 1536+40·50 + api code 80 + cache 64+50 = 7680 MB = 7.5 GB of 10 GB.
    assert "7.5 GB of 10.0 GB included (75%)" in text
    # logs 3300 MB = 3.2 GB, 3300/7680 = 43%
    assert "logs 3.2 GB 43%" in text
    assert "Logs are 3.2 GB, 43% of your storage" in text
    # shop: 900 requests per 5 min × 288 per day × 18 days (Nov 3..20).
    assert "4,665,600 requests" in text
    # Outbound: (900 + 300) × 12288 bytes × 288 × 18 = 76,441,190,400 B = 71.2 GB.
    assert "71.2 GB of 100.0 GB included (71%)" in text
    # Growth over the last 7 days is 101 MB/day; (10240 − 7680) / 101 = 25.3 days from
    # the end of Nov 20: around Dec 16.
    assert "in about 25 days (around Dec 16, 2026)" in text
    # docs serves nothing: exactly one idle tip, and only for docs.
    assert text.count("looks idle") == 1 and "docs looks idle" in text
    # 71 GB so far in 18 of 30 days projects past the 100 GB included.
    assert "Bandwidth may exceed the plan" in text
    # Six charts per deployment (4) plus the storage chart, each an inline SVG with axes.
    assert page.count("<svg") == 4 * 6 + 1
    assert "requests/min" in page and "% of one core" in page and ">ms<" in page


def test_usage_report_alert_and_health_fallback(realistic_dir: Path) -> None:
    # evil (free, 1 GB): code 300 + 15·50 = 1050 MB at day 50 → 103%. The agent's own
    # alerts are listed with their times, and the full one is not repeated as "now".
    text = _text(_usage(realistic_dir, "evil"))
    assert "2026-11-10 03:00 UTC 90% storage storage at 90% of the plan" in text
    assert "2026-11-17 03:00 UTC 100% storage storage full: writes may fail" in text
    assert "is over the plan's" not in text
    assert "Storage is full 1.0 GB is 103% of the plan's 1.0 GB" in text
    assert "No health data yet" in text  # evil has no probes


def test_usage_report_health_timeline(realistic_dir: Path) -> None:
    page = _usage(realistic_dir, "acme")
    text = _text(page)
    # Probes every 10 min from Nov 3 (period start) to the end of Nov 20: 18 × 144 = 2592;
    # api failed 12 probes (Nov 12 00:00–01:50).
    assert "api 2,592 12" in text and "shop 2,592 0" in text
    assert 'title="unhealthy Nov 12 00:00 – Nov 12 02:00 UTC"' in page
    assert "No health data yet" not in text


def test_usage_report_before_any_data(realistic_dir: Path) -> None:
    text = _text(_usage(realistic_dir, "acme", date(2026, 9, 1)))
    assert "No storage measured yet." in text
    assert "no data in this period" in text


def test_tenant_name_is_escaped_in_every_report(realistic_dir: Path) -> None:
    escaped = html.escape(XSS)
    usage = _usage(realistic_dir, "evil")
    platform = api.platform_html(
        loads(SPEC_YAML), realistic_dir / ".hosting/hosting.duckdb", AS_OF, NOW
    )
    assert html.escape(XSS_EMAIL) in usage and XSS_EMAIL not in usage
    for page in (usage, platform):
        assert escaped in page
        assert XSS not in page
        assert "<script" not in page.lower()


def test_platform_report(realistic_dir: Path) -> None:
    page = api.platform_html(
        loads(SPEC_YAML), realistic_dir / ".hosting/hosting.duckdb", AS_OF, NOW
    )
    text = _text(page)
    # Recurring per month: free 0.00 + starter 9.99 + pro yearly 299.90 / 12 = 24.99.
    assert "free 1 0.00" in text and "starter 1 9.99" in text and "pro 1 24.99" in text
    assert "USD 34.98" in text
    # globex: 40 GiB + 150 MB × 50 + 900 MB code = 49360 MB = 48.2 GB of 50 GB → 96%, near.
    assert "Globex (globex) pro storage 48.2 GB 50.0 GB 96% near" in text
    # evil: 1050 MB of 1 GB → 103%, over.
    assert f"{XSS} (evil) free storage 1.0 GB 1.0 GB 103% over" in text
    # acme at 71% of its bandwidth is not listed as near.
    assert "Acme Corp (acme) starter bandwidth" not in text


def test_usage_report_lists_the_periods_scale_events(realistic_dir: Path, tmp_path: Path) -> None:
    import shutil

    import duckdb

    folder = tmp_path / "copy"
    shutil.copytree(realistic_dir, folder)
    store = folder / ".hosting/hosting.duckdb"
    rows = [  # before the period (Nov 3), in it, and after the report's day (Nov 20)
        ("acme", "api", datetime(2026, 11, 2, 23, 59), 1, 2, "before the period"),
        ("acme", "api", datetime(2026, 11, 12, 0, 5), 1, 4, "CPU 180 % per replica, above"),
        ("acme", "api", datetime(2026, 11, 12, 0, 30), 4, 1, "CPU 5 % per replica, below"),
        ("acme", "api", datetime(2026, 11, 21, 0, 0), 1, 3, "after the report's day"),
        ("evil", "site", datetime(2026, 11, 12, 0, 5), 1, 2, "another tenant's"),
    ]
    with duckdb.connect(str(store)) as conn:
        conn.executemany("INSERT INTO scale_events VALUES (?, ?, ?, ?, ?, ?, NULL)", rows)
    text = _text(_usage(folder, "acme"))
    assert "Autoscaling" in text
    assert "2026-11-12 00:05 api 1 → 4 CPU 180 % per replica, above" in text
    assert "2026-11-12 00:30 api 4 → 1 CPU 5 % per replica, below" in text
    for absent in ("before the period", "after the report's day", "another tenant's"):
        assert absent not in text
    assert "Autoscaling" not in _text(_usage(realistic_dir, "acme"))  # none: no section
