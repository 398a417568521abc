"""`storage`, `usage` and `status` show the alerts that hold now from one computation: an
import that puts a tenant over 90 % shows in all of them at once, before any agent cycle,
with the same numbers (bytes as integers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import REPO, run_hosting

GB = 2**30


def test_storage_shows_the_alerts_usage_shows_right_after_an_import(tmp_path: Path) -> None:
    when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    used = int(0.958 * 20 * GB)  # acme's plan includes 20 GB in the example
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"id": "s-1", "deployment": "acme/main", "time": when, "metric": "storage",
                    "storage_type": "database", "value": used}) + "\n"
    )  # fmt: skip
    base = ["-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path / "state")]
    assert run_hosting(*base, "meter", "import", str(events)).returncode == 0
    assert run_hosting(*base, "subscription", "sync").returncode == 0

    storage = run_hosting(*base, "storage", "acme", "--json")
    assert storage.returncode == 0, storage.stderr
    usage = run_hosting(*base, "usage", "acme", "--json")
    assert usage.returncode == 0, usage.stderr

    shown = json.loads(storage.stdout)["tenants"][0]["alerts"]
    assert [(a["kind"], a["level"]) for a in shown] == [("storage", "warning")]
    assert shown[0]["used"] == used and isinstance(shown[0]["used"], int)
    assert shown == json.loads(usage.stdout)["alerts"]
