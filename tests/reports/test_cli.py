"""`hosting report …` through the real CLI: exit codes, messages, --json, stdout output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_hosting


def test_usage_to_stdout_and_json(realistic_dir: Path, tmp_path: Path) -> None:
    done = run_hosting("report", "usage", "acme", "--as-of", "2026-11-20", "-o", "-",
                       cwd=realistic_dir)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!DOCTYPE html>") and "Acme Corp" in done.stdout
    out = tmp_path / "sub" / "platform.html"
    done = run_hosting("report", "platform", "--as-of", "2026-11-20", "-o", str(out), "--json",
                       cwd=realistic_dir)  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["report"] == "platform" and info["as_of"] == "2026-11-20"
    assert info["bytes"] == len(out.read_bytes())


def test_errors_are_one_line_with_exit_code_1(realistic_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.html")
    done = run_hosting("report", "usage", "nobody", "-o", out, cwd=realistic_dir)
    assert done.returncode == 1
    assert "error: unknown tenant `nobody`" in done.stderr and "Traceback" not in done.stderr
    done = run_hosting("report", "usage", "acme", "--as-of", "20-11-2026", "-o", out,
                       cwd=realistic_dir)  # fmt: skip
    assert done.returncode == 1 and "is not a date" in done.stderr
    done = run_hosting("report", "usage", "acme", cwd=realistic_dir)
    assert done.returncode == 1 and "-o" in done.stderr
    assert not Path(out).exists()


def test_stdout_and_json_together_are_refused(realistic_dir: Path) -> None:
    # Both would claim standard output: say so instead of silently dropping the JSON.
    for args in (["usage", "acme", "--as-of", "2026-11-20"], ["platform"]):
        done = run_hosting("report", *args, "-o", "-", "--json", cwd=realistic_dir)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: `-o -` and `--json` both write to standard output")
        assert done.stderr.count("\n") == 1
