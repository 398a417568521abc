"""`metrics` shows one row per time: imported events carry one metric each, and seven rows
of dashes for one moment helped nobody."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import REPO, run_hosting


def test_events_of_one_moment_are_one_row(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = (f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in (now - timedelta(hours=2), now))
    events = [
        ("cpu_usage", first, 12.5), ("memory_usage", first, 1048576),
        ("bandwidth_out", first, 4096), ("requests_count", first, 10),
        ("bandwidth_out", first, 1024),  # a second sample of the same moment adds up
        ("cpu_usage", second, 20.0),
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("".join(
        json.dumps({"id": f"e-{n}", "deployment": "acme/shop", "time": t, "metric": m,
                    "value": v}) + "\n"
        for n, (m, t, v) in enumerate(events)
    ))  # fmt: skip
    base = ["-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path / "state")]
    assert run_hosting(*base, "meter", "import", str(path)).returncode == 0

    done = run_hosting(*base, "metrics", "acme/shop", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["metrics"]
    assert [r["timestamp"] for r in rows] == [first, second]
    assert rows[0]["cpu_usage"] == 12.5 and rows[0]["memory_usage"] == 1048576
    assert rows[0]["bandwidth_out"] == 5120 and rows[0]["requests_count"] == 10
    assert rows[0]["bandwidth_in"] is None
    assert rows[1]["cpu_usage"] == 20.0 and rows[1]["bandwidth_out"] is None

    text = run_hosting(*base, "metrics", "acme/shop").stdout
    body = [line for line in text.splitlines() if line.startswith("| 2")]
    assert len(body) == 2, text
    assert "2 samples" in text
