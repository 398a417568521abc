"""A source folder that cannot be built is a plain one-line error from `plan`, before the
engine is asked anything (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_hosting
from tests.sources.test_build_logs_cli import SPEC


def test_plan_names_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "package.json").write_text(json.dumps({"name": "x"}))
    (tmp_path / "hosting.yaml").write_text(SPEC)
    out = run_hosting("plan", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr == (
        f"error: {tmp_path / 'app'}/package.json: nothing to start or build (looked for "
        'scripts.start, main, server.js and scripts.build) (hint: add `"start": "node '
        'server.js"` to scripts, or a build script for a static site)\n'
    )
    assert out.stdout == ""
