"""`hosting report invoice NUMBER --pdf -o F.pdf`: one A4 page from the invoice template,
printed by real headless Chromium and read back with poppler's pdftotext and pdfinfo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.billing.site import DUE, NUMBER, TAX, TOTAL, write_site
from tests.conftest import REPO, require, run_hosting


def hosting(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_hosting(*args, cwd=root, env={"PYTHONPATH": str(REPO)})


def pdf_text(path: Path) -> str:
    require(shutil.which("pdftotext") is not None, "pdftotext (Debian package poppler-utils)")
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return out.stdout


def pdf_info(path: Path) -> dict[str, str]:
    require(shutil.which("pdfinfo") is not None, "pdfinfo (Debian package poppler-utils)")
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return {
        k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.stdout.splitlines())
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_site(tmp_path_factory.mktemp("pdf") / "site")
    done = hosting(root, "invoice", "run", "--as-of", "2026-02-03")
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.chromium
def test_one_a4_page_with_number_total_and_due_date(site: Path, chromium_binary: str) -> None:
    result = hosting(site, "report", "invoice", NUMBER, "--pdf", "-o", "out/inv.pdf")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote invoice PDF to out/inv.pdf\n"
    pdf = site / "out" / "inv.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    info = pdf_info(pdf)
    assert info["Pages"] == "1"
    # A4 is 210 × 297 mm = 595.28 × 841.89 pt (1 pt = 1/72 in = 0.3528 mm).
    width, height = (float(x) for x in re.findall(r"[\d.]+", info["Page size"])[:2])
    assert (round(width), round(height)) == (595, 842), info["Page size"]
    text = pdf_text(pdf)
    assert NUMBER in text
    assert f"USD {TOTAL}" in text
    assert re.search(rf"Due date\s+{DUE}", text), text
    assert re.search(rf"Tax 19%\s+{TAX}", text), text
    flat = re.sub(r"\s+", " ", text)
    for words in (
        "Demo Hosting Ltd",
        "Tax id: GB123456789",
        "2 Side Street",
        "Shelbyville",
        "Tax id: DE811907980",
        "Bank transfer to IBAN GB00 DEMO",
        f"Amount due (pending) USD {TOTAL}",
        f"Payment is due by {DUE}.",
    ):
        assert words in flat, words


def test_pdf_to_standard_output_is_refused(site: Path) -> None:
    result = hosting(site, "report", "invoice", NUMBER, "--pdf", "-o", "-")
    assert result.returncode == 1
    assert result.stderr == (
        "error: a PDF is not written to standard output (hint: give a file: -o FILE.pdf)\n"
    )


def test_without_chromium_a_clear_error(site: Path) -> None:
    result = run_hosting(
        "report", "invoice", NUMBER, "--pdf", "-o", "x.pdf",
        cwd=site, env={"PYTHONPATH": str(REPO), "HOSTING_CHROMIUM": str(site / "no-chromium")},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: Chromium not found at {site / 'no-chromium'}")
    assert "Traceback" not in result.stderr
    assert not (site / "x.pdf").exists()
