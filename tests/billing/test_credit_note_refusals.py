"""A credit note's refusals, each with its message and hint, and its boundaries: exactly what
remains, one cent over, a zero amount, the invoice's own issue day and the day before (issue 15).

The invoice: starter from 2026-01-03, no tax, run on 2026-02-03: INV-20260203-000001, 9.99.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from hosting import store
from hosting.billing import credit_notes, invoices
from hosting.errors import BillingError, NotFoundError, UsageError
from tests.billing.helpers import make_spec, tenant

D = Decimal
NUMBER = "INV-20260203-000001"
ISSUED = date(2026, 2, 3)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "s.duckdb"
    invoices.run(p, make_spec({"acme": tenant("starter", date(2026, 1, 3))}), ISSUED)
    return p


def credit(path: Path, amount: str | None, reason: str = "fix", day: date = ISSUED) -> object:
    value = None if amount is None else D(amount)
    return credit_notes.issue_credit_note(path, NUMBER, value, reason, today=day)


def written(path: Path) -> list[tuple[object, ...]]:
    with store.connect(path, read_only=True) as conn:
        return conn.execute(
            "SELECT seq, credit_note_number, amount FROM credit_notes ORDER BY seq"
        ).fetchall()


def test_a_blank_reason_is_refused(path: Path) -> None:
    with pytest.raises(UsageError) as info:
        credit(path, "1.00", reason="   ")
    assert (info.value.message, info.value.hint) == (
        "a credit note needs a reason",
        "say why, e.g. --reason 'refund'",
    )
    assert written(path) == []


def test_the_reason_is_kept_without_surrounding_blanks(path: Path) -> None:
    note = credit_notes.issue_credit_note(path, NUMBER, D("1.00"), "  outage  ", today=ISSUED)
    assert note.reason == "outage"


def test_an_unknown_invoice_is_not_found(path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        credit_notes.issue_credit_note(path, "INV-20260203-000009", D("1.00"), "x", today=ISSUED)
    assert (info.value.message, info.value.hint) == (
        "no invoice numbered `INV-20260203-000009`",
        "see `hosting invoice list` for the numbers",
    )


def test_more_than_two_decimals_is_refused(path: Path) -> None:
    with pytest.raises(UsageError) as info:
        credit(path, "1.005")
    assert (info.value.message, info.value.hint) == (
        "1.005 has more than two decimals",
        "give an amount in cents, e.g. 5.00",
    )
    assert written(path) == []


def test_zero_is_refused_one_cent_is_not(path: Path) -> None:
    with pytest.raises(BillingError) as info:
        credit(path, "0.00")
    assert (info.value.message, info.value.hint) == (
        f"invoice {NUMBER}: the amount must be above 0.00",
        "9.99 USD of 9.99 remains creditable",
    )
    assert written(path) == []
    credit(path, "0.01")
    assert written(path) == [(1, "CN-20260203-000001", D("0.01"))]


def test_exactly_what_remains_then_nothing_remains(path: Path) -> None:
    # 9.99 − 4.00 = 5.99 remains: 6.00 (one cent over) refused with the notes so far; 5.99
    # accepted; then "all that remains" is nothing.
    credit(path, "4.00")
    with pytest.raises(BillingError) as info:
        credit(path, "6.00")
    assert info.value.hint == "its total is 9.99; credit notes so far: CN-20260203-000001 4.00"
    credit(path, "5.99")
    with pytest.raises(BillingError) as info:
        credit(path, None)
    assert (info.value.message, info.value.hint) == (
        f"invoice {NUMBER}: nothing remains to credit",
        "0.00 USD of 9.99 remains creditable",
    )
    assert written(path) == [
        (1, "CN-20260203-000001", D("4.00")),
        (2, "CN-20260203-000002", D("5.99")),
    ]


def test_one_cent_over_the_whole_total_lists_no_notes(path: Path) -> None:
    with pytest.raises(BillingError) as info:
        credit(path, "10.00")
    assert (info.value.message, info.value.hint) == (
        f"invoice {NUMBER}: 10.00 is more than the 9.99 USD that remains creditable",
        "its total is 9.99; credit notes so far: none",
    )
    assert written(path) == []


def test_dated_the_issue_day_is_fine_the_day_before_is_not(path: Path) -> None:
    with pytest.raises(UsageError) as info:
        credit(path, "1.00", day=date(2026, 2, 2))
    assert (info.value.message, info.value.hint) == (
        f"a credit note cannot be dated 2026-02-02, before invoice {NUMBER} was issued "
        "(2026-02-03)",
        "give a later date",
    )
    assert written(path) == []
    credit(path, "1.00", day=ISSUED)
    assert written(path) == [(1, "CN-20260203-000001", D("1.00"))]


def test_the_hint_lists_every_note_so_far(path: Path) -> None:
    # 9.99 − 1.00 − 2.00 = 6.99 remains; 7.00 is one cent over.
    credit(path, "1.00")
    credit(path, "2.00")
    with pytest.raises(BillingError) as info:
        credit(path, "7.00")
    assert info.value.hint == (
        "its total is 9.99; credit notes so far: CN-20260203-000001 1.00, CN-20260203-000002 2.00"
    )
