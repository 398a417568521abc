"""Every report opened in real headless Chromium: no console message, no network request,
a screenshot with real content; the invoice prints to one page. The harness itself is
checked first against a page that does everything wrong, so these tests can fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_hosting
from tests.reports import browser
from tests.reports.realistic import XSS

pytestmark = pytest.mark.chromium

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def _keep(shot: Path | None, name: str) -> None:
    """Copies screenshots where a person can look at them (ignored by git)."""
    if shot is not None:
        SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / name)


def assert_clean(run: browser.PageRun) -> None:
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.console == [], run.console
    assert run.requests == [], run.requests
    assert run.screenshot is not None
    ink, variance = browser.ink_and_variance(run.screenshot)
    assert ink > 0.02 and variance > 200, (ink, variance)


def test_harness_catches_a_bad_page(chromium_binary: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="http://reports.invalid/logo.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    run = browser.run(chromium_binary, page, tmp_path / "run", screenshot=True, pdf=True)
    assert run.requests == ["http://reports.invalid/logo.png"]
    assert any('"boom"' in line for line in run.console)
    assert run.screenshot is not None and run.pdf is not None
    ink, variance = browser.ink_and_variance(run.screenshot)
    assert ink < 0.02 and variance < 200  # a blank page is recognised as blank
    assert browser.external_references(page.read_text()) == [
        'src="http://',
        "<script",
    ]
    assert browser.pdf_pages(run.pdf) == 1


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("report", "usage", "acme", "--as-of", "2026-11-20"), "usage-acme"),
        (("report", "usage", "evil", "--as-of", "2026-11-20"), "usage-evil"),
        (("report", "platform", "--as-of", "2026-11-20"), "platform"),
    ],
)
def test_report_in_chromium(
    chromium_binary: str, realistic_dir: Path, tmp_path: Path, args: tuple[str, ...], name: str
) -> None:
    out = tmp_path / f"{name}.html"
    done = run_hosting(*args, "-o", str(out), cwd=realistic_dir)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert browser.external_references(page) == []
    if "evil" in name or name == "platform":
        assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    run = browser.run(chromium_binary, out, tmp_path / "run", screenshot=True, pdf=True)
    assert_clean(run)
    _keep(run.screenshot, f"{name}.png")
