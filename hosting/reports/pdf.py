"""HTML report → PDF through headless Chromium's print-to-PDF (issue 15).

Chromium, not WeasyPrint: it is the engine the reports are already designed and tested in
(tests/reports render them with it), so the PDF is the page an operator previews, with the
same CSS (grid, flex, `@page { size: A4 }`); and it is one Debian package with no Python
dependency. The cost: the machine that makes PDFs needs Chromium, and each PDF starts a
browser (about a second).

The page is our own self-contained HTML (its CSP forbids every fetch and script); Chromium
runs with a throwaway profile, networking pointed at a closed loopback port and no name
resolving, so nothing can leave the machine while it prints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hosting.errors import HostingError, UsageError

PDF_TIMEOUT_SECONDS = 120
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(HostingError):
    """Chromium is missing or did not produce a PDF."""


def chromium_binary() -> str:
    """$HOSTING_CHROMIUM, or the first Chromium on PATH."""
    given = os.environ.get("HOSTING_CHROMIUM")
    if given:
        return given
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError(
        "a PDF needs headless Chromium, and none is on PATH",
        "install it (Debian: apt-get install chromium) or set HOSTING_CHROMIUM to its path",
    )


def _flags(profile: Path) -> list[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        "--no-pdf-header-footer",  # no URL, date or page number in the margins
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses root otherwise; the page runs no script
    return flags


def html_to_pdf(html: str) -> bytes:
    """Print `html` to PDF bytes (the page size is the stylesheet's `@page`)."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="hosting-pdf-") as tmp:
        work = Path(tmp)
        page = work / "page.html"
        page.write_text(html, encoding="utf-8")
        out = work / "page.pdf"
        args = [binary, *_flags(work / "profile"), f"--print-to-pdf={out}", page.as_uri()]
        try:
            proc = subprocess.run(
                args, capture_output=True, text=True, timeout=PDF_TIMEOUT_SECONDS, check=False
            )
        except FileNotFoundError:
            raise PdfError(
                f"Chromium not found at {binary}", "set HOSTING_CHROMIUM to its path"
            ) from None
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not finish printing in {PDF_TIMEOUT_SECONDS} s") from None
        data = out.read_bytes() if out.exists() else b""
        if not data.startswith(b"%PDF-"):
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise PdfError(
                f"Chromium wrote no PDF (exit {proc.returncode}): {last}",
                "run with --debug, or try the HTML report without --pdf",
            )
        return data


def write_pdf(html: str, output: str) -> int:
    """Write the PDF to the file `output`; returns its size in bytes."""
    if output == "-":
        raise UsageError("a PDF is not written to standard output", "give a file: -o FILE.pdf")
    data = html_to_pdf(html)
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return len(data)
