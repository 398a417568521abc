"""What scripts/demo shows a new user, checked without running all of it: nothing in it
hides a failure, and its can-deploy step shows a refusal (the example usage fills initech's
free plan), not another yes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, run_hosting

DEMO = (REPO / "scripts" / "demo").read_text()


def test_the_demo_hides_no_failure() -> None:
    assert not re.search(r"\|\|\s*true", DEMO)
    assert "2>/dev/null" not in DEMO


def test_the_demo_shows_a_refusal_after_the_usage_import(tmp_path: Path) -> None:
    events = tmp_path / "usage.jsonl"
    subprocess.run([sys.executable, str(REPO / "examples/generate_usage.py"), str(events)],
                   check=True, capture_output=True)  # fmt: skip
    base = ["-f", str(REPO / "hosting.yaml"), "--state-dir", str(tmp_path / "state")]
    assert run_hosting(*base, "meter", "import", str(events)).returncode == 0
    done = run_hosting(*base, "can-deploy", "initech", "web")
    assert done.returncode == 1
    assert done.stdout.startswith("no: Storage limit exceeded")
    assert "hosting can-deploy initech web" in DEMO
    assert DEMO.index("meter import") < DEMO.index("hosting can-deploy initech web")
