"""A small harness around real headless Chromium: screenshot, PDF, console messages and the
network requests a page made, with the network effectively off (every request goes to a
proxy on a closed loopback port and no name resolves), so nothing can leave the machine.

The net log (`--log-net-log`) records every URL request; a request the page started carries
the page's `file://` network isolation key, which separates it from Chromium's own
background traffic. Console messages (including CSP violations and script errors) come from
`--enable-logging=stderr`.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--hide-scrollbars",
]

EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<script|<link\b|<iframe|<object|<embed""",
    re.IGNORECASE,
)


@dataclass
class PageRun:
    returncode: int
    stderr: str
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    pdf: Path | None = None


def external_references(html: str) -> list[str]:
    """Anything in the markup that would fetch from elsewhere (or run script)."""
    return [m.group(0) for m in EXTERNAL.finditer(html)]


def run(
    binary: str,
    page: Path,
    workdir: Path,
    *,
    screenshot: bool = False,
    pdf: bool = False,
    size: tuple[int, int] = (1200, 1600),
) -> PageRun:
    workdir.mkdir(parents=True, exist_ok=True)
    netlog = workdir / "netlog.json"
    args = [
        binary,
        *FLAGS,
        f"--user-data-dir={workdir / 'profile'}",
        f"--log-net-log={netlog}",
        "--net-log-capture-mode=Default",
    ]
    shot = workdir / "screenshot.png"
    out_pdf = workdir / "page.pdf"
    if screenshot:
        args += [f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}"]
    if pdf:
        args += [f"--print-to-pdf={out_pdf}", "--no-pdf-header-footer"]
    args.append(page.resolve().as_uri())
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    result = PageRun(proc.returncode, proc.stderr)
    result.console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    result.requests = page_requests(netlog)
    result.screenshot = shot if shot.exists() else None
    result.pdf = out_pdf if out_pdf.exists() else None
    return result


def page_requests(netlog: Path) -> list[str]:
    """URLs of the requests the page itself started (not Chromium's background traffic)."""
    if not netlog.exists():
        raise AssertionError("Chromium wrote no net log; cannot tell which requests it made")
    text = netlog.read_text(errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):  # an unfinished log (killed browser): close it to parse
        text = text.rstrip(",\n") + "]}"
    log = json.loads(text)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        if event.get("type") != start_job or "url" not in params:
            continue
        if "file://" in str(params.get("network_isolation_key", "")):
            urls.append(params["url"])
    return urls


def pdf_pages(path: Path) -> int:
    """Page objects in the PDF (`/Type /Page`, not the `/Pages` tree nodes)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def png_luma(path: Path, max_rows: int = 700) -> tuple[int, int, list[int]]:
    """(width, rows decoded, luma per pixel) of the top of an 8-bit RGB/RGBA PNG, with the
    scanline filters undone by hand (stdlib only)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), f"unexpected PNG format {depth}/{color}"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompressobj().decompress(idat)
    stride = width * channels
    rows = min(height, max_rows)
    prev = bytearray(stride)
    luma: list[int] = []
    for y in range(rows):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        luma.extend(
            (299 * line[i] + 587 * line[i + 1] + 114 * line[i + 2]) // 1000
            for i in range(0, stride, channels)
        )
        prev = line
    return width, rows, luma


def ink_and_variance(path: Path) -> tuple[float, float]:
    """Share of pixels that are not near-white, and the luma variance."""
    _, _, luma = png_luma(path)
    n = len(luma)
    mean = sum(luma) / n
    variance = sum((v - mean) ** 2 for v in luma) / n
    ink = sum(1 for v in luma if v < 235) / n
    return ink, variance
