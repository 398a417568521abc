"""The corpus of broken files: each exits 1, names the right line and field, shows no
traceback, and prints exactly its reviewed golden message (a wording change is a reviewed
change: regenerate with UPDATE_GOLDEN=1 and read the diff)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hosting.errors import SpecError
from hosting.spec import load
from tests.conftest import golden, run_hosting

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(p.stem for p in BROKEN.glob("*.yaml"))
LINE_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<rest>.+)$")


def expectations(name: str) -> list[tuple[int, str]]:
    """Hand-written `# expect: LINE PATH` lines (LINE 0: any line)."""
    out = []
    for line in (BROKEN / f"{name}.expect").read_text().splitlines():
        _, _, rest = line.partition("# expect:")
        number, _, path = rest.strip().partition(" ")
        out.append((int(number), path.strip()))
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_broken_file(name: str) -> None:
    result = run_hosting("-f", f"{name}.yaml", "validate", cwd=BROKEN)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines, "an error must be printed"
    parsed = []
    for line in lines:
        m = LINE_RE.match(line)
        assert m, f"not FILE:LINE:COL: error: …: {line!r}"
        assert m["file"] == f"{name}.yaml"
        parsed.append((int(m["line"]), m["rest"]))
    for want_line, want_path in expectations(name):
        hits = [
            (n, rest)
            for n, rest in parsed
            if (want_line == 0 or n == want_line) and rest.startswith(want_path)
        ]
        assert hits, f"expected an error on line {want_line} at `{want_path}`, got {lines}"
    assert result.stderr == golden(BROKEN / f"{name}.golden", result.stderr)


def test_secret_values_never_echoed() -> None:
    for name, value in (
        ("plaintext_secret_env", "hunter2"),
        ("inline_secret", "abc123"),
        ("payments_literal_api_key", "sk_live_51HxSecretValue"),
    ):
        result = run_hosting("-f", f"{name}.yaml", "validate", cwd=BROKEN)
        assert result.returncode == 1
        assert value not in result.stderr


@pytest.mark.parametrize("name", CASES)
def test_broken_file_in_process(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same reviewed message from `load` itself, without a subprocess between: so that
    mutation testing, which follows only in-process calls, sees every rule these files break."""
    monkeypatch.chdir(BROKEN)
    with pytest.raises(SpecError) as info:
        load(Path(f"{name}.yaml"))
    assert "\n".join(info.value.lines()) + "\n" == (BROKEN / f"{name}.golden").read_text()
