"""Tax and credit notes worked out by hand (issue 15), through a real DuckDB store.

Rules (README, "Invoices and credit notes"): tax = net × rate ÷ 100, rounded half up to the
cent once, on the invoice's net (the sum of its rounded lines); total = net + tax. A credit
note's tax = amount × rate ÷ (100 + rate), rounded half up, except the one that brings the
credits to the invoice's total: it takes the invoice's tax less the tax already credited.
"→" marks a rounding to cents, half up. Every tenant starts 2026-01-03, so the first period
is 2026-01-03 → 2026-02-03 and its invoice is INV-20260203-000001, issued on the run's
as-of day 2026-02-03.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hosting import store
from hosting.billing import credit_notes, current, invoices
from hosting.errors import BillingError
from tests.billing.helpers import make_spec, tenant

D = Decimal
NUMBER = "INV-20260203-000001"
START, RUN = date(2026, 1, 3), date(2026, 2, 3)


def issue(path: Path, plans: dict[str, Any] | None = None, **extra: Any) -> invoices.Invoice:
    plan = "team" if plans else "starter"
    spec = make_spec({"acme": tenant(plan, START, **extra)}, plans)
    invoices.run(path, spec, RUN)
    return invoices.get_invoice(path, NUMBER)


def test_1_tax_on_the_net_as_its_own_line(tmp_path: Path) -> None:
    # starter, full month: 9.99 net. Tax 19 %: 9.99 × 19 ÷ 100 = 1.8981 → 1.90.
    # Total 9.99 + 1.90 = 11.89, due 11.89 (no credit notes, pending).
    inv = issue(tmp_path / "s.duckdb", tax_rate=19)
    assert inv.document is not None
    assert (inv.document.net, inv.document.tax, inv.document.total) == (
        D("9.99"),
        D("1.90"),
        D("11.89"),
    )
    assert (inv.amount, inv.amount_due) == (D("11.89"), D("11.89"))


def test_2_a_half_cent_of_tax_rounds_up(tmp_path: Path) -> None:
    # A plan at 12.25 a month, tax 10 %: 12.25 × 10 ÷ 100 = 1.225 exactly → 1.23 half up
    # (half-even would give 1.22). Total 12.25 + 1.23 = 13.48.
    team = {
        "price_monthly": 12.25,
        "price_yearly": 122.50,
        "storage_gb": 10,
        "bandwidth_gb": 100,
        "databases": 1,
        "apis": 1,
        "websites": 1,
        "custom_domain": False,
        "ssl_certificate": False,
        "limits": {"cpus": 1, "memory_mb": 512, "disk_io_mbps": 50, "network_mbps": 50},
    }
    inv = issue(tmp_path / "s.duckdb", {"team": team}, tax_rate=10)
    assert inv.document is not None
    assert (inv.document.tax, inv.amount) == (D("1.23"), D("13.48"))


def test_3_partial_credit_note_splits_its_tax(tmp_path: Path) -> None:
    # Invoice 11.89 (9.99 + 1.90 at 19 %). Credit 5.00 on 2026-02-10:
    # tax 5.00 × 19 ÷ 119 = 0.798319… → 0.80; net 5.00 − 0.80 = 4.20.
    # Number: the first credit note, dated its issue day: CN-20260210-000001.
    # Amount due of the pending invoice: 11.89 − 5.00 = 6.89.
    path = tmp_path / "s.duckdb"
    issue(path, tax_rate=19)
    note = credit_notes.issue_credit_note(
        path, NUMBER, D("5.00"), "goodwill", today=date(2026, 2, 10)
    )
    assert (note.credit_note_number, note.amount, note.net, note.tax) == (
        "CN-20260210-000001",
        D("5.00"),
        D("4.20"),
        D("0.80"),
    )
    inv = invoices.get_invoice(path, NUMBER)
    assert (inv.credited, inv.amount_due) == (D("5.00"), D("6.89"))


def test_4_the_last_credit_note_takes_the_tax_left(tmp_path: Path) -> None:
    # Invoice 11.89 = 9.99 + 1.90 tax. Credit 0.03: 0.03 × 19 ÷ 119 = 0.00479 → 0.00 tax,
    # net 0.03. The rest, 11.86, brings the credits to the total: its tax is 1.90 − 0.00 =
    # 1.90 (11.86 × 19 ÷ 119 = 1.8936 → 1.89 would leave a cent of tax never credited),
    # net 11.86 − 1.90 = 9.96. Nets 0.03 + 9.96 = 9.99 and taxes 0.00 + 1.90 = 1.90: the
    # invoice's own. Numbers: CN-20260204-000001, then CN-20260205-000002.
    path = tmp_path / "s.duckdb"
    issue(path, tax_rate=19)
    first = credit_notes.issue_credit_note(path, NUMBER, D("0.03"), "fix", today=date(2026, 2, 4))
    rest = credit_notes.issue_credit_note(path, NUMBER, None, "refund", today=date(2026, 2, 5))
    assert (first.net, first.tax) == (D("0.03"), D("0.00"))
    assert (rest.credit_note_number, rest.amount, rest.net, rest.tax) == (
        "CN-20260205-000002",
        D("11.86"),
        D("9.96"),
        D("1.90"),
    )
    assert invoices.get_invoice(path, NUMBER).amount_due == D("0.00")


def test_5_never_more_than_remains_and_nothing_written(tmp_path: Path) -> None:
    # No tax: invoice 9.99. Credit 4.00 (tax 0, net 4.00) leaves 9.99 − 4.00 = 5.99.
    # 6.00 is refused; 5.99 is accepted and is number 2 (the refusal used no number);
    # after it 0.00 remains, and 0.01 more is refused.
    path = tmp_path / "s.duckdb"
    issue(path)
    credit_notes.issue_credit_note(path, NUMBER, D("4.00"), "outage", today=date(2026, 2, 4))
    with pytest.raises(BillingError) as info:
        credit_notes.issue_credit_note(path, NUMBER, D("6.00"), "too much", today=date(2026, 2, 4))
    assert info.value.message == (
        f"invoice {NUMBER}: 6.00 is more than the 5.99 USD that remains creditable"
    )
    last = credit_notes.issue_credit_note(path, NUMBER, D("5.99"), "rest", today=date(2026, 2, 4))
    assert (last.credit_note_number, last.net, last.tax) == (
        "CN-20260204-000002",
        D("5.99"),
        D("0.00"),
    )
    with pytest.raises(BillingError):
        credit_notes.issue_credit_note(path, NUMBER, D("0.01"), "more", today=date(2026, 2, 4))
    with store.connect(path, read_only=True) as conn:
        rows = conn.execute("SELECT seq FROM credit_notes ORDER BY seq").fetchall()
        counter = conn.execute("SELECT last_value FROM credit_note_sequence").fetchone()
    assert (rows, counter) == ([(1,), (2,)], (2,))


def test_a_refused_credit_note_in_a_callers_transaction_rolls_back(tmp_path: Path) -> None:
    """issue_in is for part B's refunds: the refund and its credit note commit together."""
    path = tmp_path / "s.duckdb"
    issue(path)
    with store.connect(path) as conn:
        with pytest.raises(BillingError), store.transaction(conn):
            credit_notes.issue_in(conn, NUMBER, D("2.00"), "refund", today=date(2026, 2, 4))
            credit_notes.issue_in(conn, NUMBER, D("9.00"), "refund", today=date(2026, 2, 4))
        assert conn.execute("SELECT count(*) FROM credit_notes").fetchone() == (0,)


def test_6_the_projection_is_taxed_like_the_invoice(tmp_path: Path) -> None:
    # starter from 2026-01-03, no usage, as of 2026-01-20: the period's projected net is the
    # base 9.99 (no overage); tax 19 %: 1.8981 → 1.90; projected cost 11.89, what test 1's
    # invoice for the same period says.
    spec = make_spec({"acme": tenant("starter", START, tax_rate=19)})
    use = current.usage(tmp_path / "s.duckdb", spec, "acme", date(2026, 1, 20))
    assert (use.base_cost, use.projected_tax, use.projected_cost) == (
        D("9.99"),
        D("1.90"),
        D("11.89"),
    )


def test_7_a_one_percent_rate_is_split_like_any_other(tmp_path: Path) -> None:
    # 1 % is a rate like 19 %, not "no tax": invoice 9.99 + 9.99 × 1 ÷ 100 = 0.0999 → 0.10,
    # total 10.09. Credit 5.00: tax 5.00 × 1 ÷ 101 = 0.049504… → 0.05, net 4.95.
    path = tmp_path / "s.duckdb"
    assert issue(path, tax_rate=1).amount == D("10.09")
    note = credit_notes.issue_credit_note(path, NUMBER, D("5.00"), "fix", today=date(2026, 2, 4))
    assert (note.net, note.tax) == (D("4.95"), D("0.05"))


def test_8_the_last_credit_note_takes_the_tax_left_after_a_taxed_one(tmp_path: Path) -> None:
    # Invoice 11.89 = 9.99 + 1.90 tax. Credit 5.00: tax 5.00 × 19 ÷ 119 = 0.798… → 0.80. The
    # rest, 6.89, brings the credits to the total: its tax is 1.90 − 0.80 = 1.10, net 5.79.
    # Taxes 0.80 + 1.10 = 1.90, nets 4.20 + 5.79 = 9.99: the invoice's own.
    path = tmp_path / "s.duckdb"
    issue(path, tax_rate=19)
    credit_notes.issue_credit_note(path, NUMBER, D("5.00"), "fix", today=date(2026, 2, 4))
    rest = credit_notes.issue_credit_note(path, NUMBER, None, "refund", today=date(2026, 2, 5))
    assert (rest.amount, rest.net, rest.tax) == (D("6.89"), D("5.79"), D("1.10"))
