"""The invoice report, end to end through billing: usage rows in a real DuckDB store,
`hosting invoice run`, then `hosting report invoice`. Every expected amount below is worked
out by hand from the usage written here and SPEC section 3, not by the code under test."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from hosting.store import connect
from tests.conftest import run_hosting
from tests.reports import browser
from tests.reports.realistic import XSS

GIB = 2**30

SPEC = f"""
version: 1
platform:
  name: gold-host
  domain: apps.gold.test
  public_ipv4: 127.0.0.1
tenants:
  gold:
    name: Gold & Sons <Ltd>
    email: ap@gold.test
    plan: starter
    started: 2026-10-03
    deployments:
      site: {{type: web, image: "hosting-demo/web", port: 8080}}
  shift:
    name: Shift Co
    email: ap@shift.test
    plan: {{shift_plan}}
    started: 2026-10-03
  evil:
    name: "{XSS}"
    email: evil@evil.test
    plan: free
    started: 2026-10-10
    deployments:
      site: {{type: web, image: "hosting-demo/web", port: 8080}}
"""


@pytest.fixture(scope="module")
def invoiced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("invoices")
    spec_file = folder / "hosting.yaml"
    spec_file.write_text(SPEC.replace("{shift_plan}", "starter"))
    with connect(folder / ".hosting" / "hosting.duckdb") as conn:
        # gold, period 2026-10-03 .. 2026-11-03 (31 days): 12 GiB for the first 15.5 days,
        # then 20 GiB for the other 15.5 → average 16 GiB; starter includes 10 → 6 GB over.
        # Outbound 100.5 GiB in the period; 100 included → 0.5 GB over.
        conn.execute(
            "INSERT INTO deployment_storage VALUES"
            " ('g1', 'gold', 'site', 'code', ?, NULL, TIMESTAMP '2026-10-03 00:00:00'),"
            " ('g2', 'gold', 'site', 'code', ?, NULL, TIMESTAMP '2026-10-18 12:00:00'),"
            # evil, period 2026-10-10 .. 2026-11-10: 1.5 GiB all along; free includes 1.
            " ('e1', 'evil', 'site', 'code', ?, NULL, TIMESTAMP '2026-10-10 00:00:00')",
            [12 * GIB, 20 * GIB, 3 * GIB // 2],
        )
        conn.execute(
            'INSERT INTO deployment_metrics (event_id, tenant, deployment, "timestamp",'
            " bandwidth_out) VALUES"
            " ('b1', 'gold', 'site', TIMESTAMP '2026-10-05 10:00:00', ?),"
            " ('b2', 'gold', 'site', TIMESTAMP '2026-10-30 10:00:00', ?),"
            # outside the period (the next one): must not count
            " ('b3', 'gold', 'site', TIMESTAMP '2026-11-03 00:00:00', ?)",
            [100 * GIB, GIB // 2, 7 * GIB],
        )
    # shift moves from starter to pro on Oct 18: recorded by `subscription sync`.
    done = run_hosting("subscription", "sync", "--as-of", "2026-10-03", cwd=folder)
    assert done.returncode == 0, done.stderr
    spec_file.write_text(SPEC.replace("{shift_plan}", "pro"))
    done = run_hosting("subscription", "sync", "--as-of", "2026-10-18", cwd=folder)
    assert done.returncode == 0, done.stderr
    done = run_hosting("invoice", "run", "--as-of", "2026-11-20", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def _cells(page: str, cls: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
        for m in re.findall(rf'<td class="[^"]*\b{cls}\b[^"]*"[^>]*>(.*?)</td>', page, re.S)
    ]


def _report(folder: Path, number: str) -> str:
    out = folder / f"{number}.html"
    done = run_hosting("report", "invoice", number, "-o", str(out), cwd=folder)
    assert done.returncode == 0, done.stderr
    return out.read_text()


def test_invoice_numbers_match_the_stored_invoice_to_the_cent(invoiced: Path) -> None:
    # gold's period ends first (Nov 3), so it has number 1 of the gapless sequence.
    page = _report(invoiced, "INV-20261103-000001")
    # starter 9.99 · 6 GB × 0.10 = 0.60 · 0.5 GB × 0.05 = 0.025 → 0.03 (half up) = 10.62
    assert _cells(page, "amount") == ["9.99", "0.60", "0.03"]
    assert re.search(r'id="subtotal">10\.62<', page)
    assert re.search(r'id="total">USD 10\.62<', page)
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert "6 GB 0.10 / GB 0.60" in text
    assert "0.5 GB 0.05 / GB 0.03" in text
    assert "1 month 9.99 / month 9.99" in text
    assert "2026-10-03 – 2026-11-02" in text  # the last day included
    assert "gold-host" in text and "apps.gold.test" in text and "ap@gold.test" in text
    assert "pending" in text
    assert "Gold &amp; Sons &lt;Ltd&gt;" in page

    # The same numbers as billing stored them.
    shown = run_hosting("invoice", "show", "INV-20261103-000001", "--json", cwd=invoiced)
    stored = json.loads(shown.stdout)
    assert stored["amount"] == "10.62"
    assert [stored["base_cost"], stored["storage_cost"], stored["bandwidth_cost"]] == [
        "9.99",
        "0.60",
        "0.03",
    ]


def test_plan_change_is_pro_rated_on_the_invoice(invoiced: Path) -> None:
    # Ends Nov 3 like gold, and "shift" sorts after "gold": number 2.
    page = _report(invoiced, "INV-20261103-000002")
    # 31-day period; starter Oct 3–17 (15 days): 9.99 × 15 / 31 = 4.8338… → 4.83;
    # pro Oct 18–Nov 2 (16 days): 29.99 × 16 / 31 = 15.4787… → 15.48; no usage → 0.00 twice.
    assert _cells(page, "amount") == ["4.83", "15.48", "0.00", "0.00"]
    assert re.search(r'id="total">USD 20\.31<', page)
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert "15 of 31 days" in text and "16 of 31 days" in text
    assert "Plan: pro (monthly)" in text  # the plan on the period's last day


def test_status_change_shows_on_the_invoice(invoiced: Path) -> None:
    done = run_hosting("invoice", "mark", "INV-20261110-000003", "paid", cwd=invoiced)
    assert done.returncode == 0, done.stderr
    page = _report(invoiced, "INV-20261110-000003")
    assert '<span class="badge paid">paid</span>' in page
    # free 0.00 · 0.5 GB × 0.10 = 0.05 · no bandwidth → 0.05
    assert _cells(page, "amount") == ["0.00", "0.05", "0.00"]
    assert re.search(r'id="total">USD 0\.05<', page)


def test_customer_name_is_escaped(invoiced: Path) -> None:
    page = _report(invoiced, "INV-20261110-000003")
    assert XSS not in page
    assert html.escape(XSS) in page
    assert "<script" not in page.lower()


def test_platform_report_counts_invoiced_revenue_by_plan(invoiced: Path) -> None:
    out = invoiced / "platform.html"
    done = run_hosting("report", "platform", "--as-of", "2026-11-20", "-o", str(out),
                       cwd=invoiced)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out.read_text())))
    # plan, tenants, recurring/month, invoices, invoiced: evil 0.05 (free), gold 10.62
    # (starter), shift 20.31 (pro on its period's last day; pro now: 29.99/month).
    assert "free 1 0.00 1 0.05" in text
    assert "starter 1 9.99 1 10.62" in text
    assert "pro 1 29.99 1 20.31" in text
    assert "Total 3 39.98 3 30.98" in text
    # As of Nov 9 only the two periods that ended on Nov 3 count.
    done = run_hosting("report", "platform", "--as-of", "2026-11-09", "-o", str(out),
                       cwd=invoiced)  # fmt: skip
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out.read_text())))
    assert "Total 3 39.98 2 30.93" in text


def test_unknown_invoice_is_an_error(invoiced: Path) -> None:
    done = run_hosting(
        "report", "invoice", "INV-20990101-000009", "-o", str(invoiced / "x.html"), cwd=invoiced
    )
    assert done.returncode == 1
    assert "no invoice numbered `INV-20990101-000009`" in done.stderr
    assert not (invoiced / "x.html").exists()


@pytest.mark.chromium
def test_invoice_in_chromium_prints_on_one_page(
    chromium_binary: str, invoiced: Path, tmp_path: Path
) -> None:
    _report(invoiced, "INV-20261103-000001")
    page = invoiced / "INV-20261103-000001.html"
    assert browser.external_references(page.read_text()) == []
    run = browser.run(chromium_binary, page, tmp_path / "run", screenshot=True, pdf=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.console == [] and run.requests == []
    assert run.screenshot is not None and run.pdf is not None
    ink, variance = browser.ink_and_variance(run.screenshot)
    assert ink > 0.02 and variance > 200, (ink, variance)
    assert browser.pdf_pages(run.pdf) == 1
    shots = Path(__file__).resolve().parent / "screenshots"
    shots.mkdir(exist_ok=True)
    (shots / "invoice.png").write_bytes(run.screenshot.read_bytes())
    (shots / "invoice.pdf").write_bytes(run.pdf.read_bytes())
