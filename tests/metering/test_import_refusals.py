"""`meter import` refuses what cannot be usage: a tenant that neither the file nor the
billing history knows, and a time after now. Each is named by its line, like any bad line,
and nothing of the file is imported."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, run_hosting


def _event(n: int, deployment: str, time: str) -> str:
    return json.dumps({"id": f"e-{n}", "deployment": deployment, "time": time,
                       "metric": "bandwidth_out", "value": 1024})  # fmt: skip


def test_unknown_tenants_and_future_times_are_bad_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join([
            _event(1, "acme/shop", "2026-11-05T10:00:00Z"),
            _event(2, "nobody/x", "2026-11-05T10:00:00Z"),
            _event(3, "acme/shop", "2027-01-05T10:00:00Z"),
            _event(4, "acme/removed-long-ago", "2026-11-05T10:00:00Z"),
        ]) + "\n"
    )  # fmt: skip
    base = ["-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path / "state")]
    done = run_hosting(*base, "meter", "import", str(events))
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"{events}:2: error: tenant `nobody` is neither in the file nor in the billing history"
    )
    assert lines[1].startswith(f"{events}:3: error: `time` is after now (")
    assert lines[2] == "error: nothing from this file was imported (fix the lines and run again)"
    assert len(lines) == 3  # a deployment gone from the file may still have had usage

    events.write_text(
        "\n".join(line for line in events.read_text().splitlines() if '"e-1"' in line) + "\n"
    )
    done = run_hosting(*base, "meter", "import", str(events), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == 1
