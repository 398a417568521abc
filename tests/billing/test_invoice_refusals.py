"""What `invoice show`, `invoice list` and `invoice mark` say when they refuse, in process.

Found by scripts/mutation (target invoices): the refusals were tested for their kind and
first words only, so the rest of each message and every hint went unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from hosting.billing import invoices
from hosting.errors import BillingError, HostingError, NotFoundError, UsageError
from tests.billing.helpers import make_spec, tenant

MISSING = "INV-20990101-000999"


def refusal(call: Callable[..., object], *args: object) -> tuple[type, str, str | None]:
    with pytest.raises(HostingError) as info:
        call(*args)
    return type(info.value), info.value.message, info.value.hint


def test_each_refusal_says_what_and_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"acme": tenant("starter", date(2025, 1, 1))})
    first, second, third = invoices.run(db, spec, date(2025, 4, 1)).created
    invoices.mark(db, second.invoice_number, "paid")
    invoices.mark(db, third.invoice_number, "paid")
    invoices.mark(db, third.invoice_number, "refunded")
    see = "see `hosting invoice list` for the numbers"
    assert refusal(invoices.get_invoice, db, MISSING) == (
        NotFoundError,
        f"no invoice numbered `{MISSING}`",
        see,
    )
    assert refusal(invoices.mark, db, MISSING, "paid") == (
        NotFoundError,
        f"no invoice numbered `{MISSING}`",
        see,
    )
    assert refusal(invoices.mark, db, first.invoice_number, "settled") == (
        UsageError,
        "unknown status `settled`",
        "use one of pending, paid, failed, refunded",
    )
    assert refusal(invoices.mark, db, first.invoice_number, "refunded") == (
        BillingError,
        f"invoice {first.invoice_number} is pending; it cannot become refunded",
        "from pending it can become: paid, failed",
    )
    assert refusal(invoices.mark, db, third.invoice_number, "paid") == (
        BillingError,
        f"invoice {third.invoice_number} is refunded; it cannot become paid",
        "from refunded it can become: nothing (final)",
    )
    assert refusal(invoices.list_invoices, db, "initech") == (
        NotFoundError,
        "unknown tenant `initech`",
        "tenants with a billing history: acme",
    )
    assert refusal(invoices.list_invoices, tmp_path / "empty.duckdb", "initech")[2] == (
        "tenants with a billing history: none yet"
    )
    assert refusal(invoices.list_invoices, db, None, "settled") == (
        UsageError,
        "unknown status `settled`",
        "use one of pending, paid, failed, refunded",
    )


def test_list_filters_by_tenant_and_status_together(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec(
        {"acme": tenant("starter", date(2025, 1, 1)), "globex": tenant("pro", date(2025, 1, 1))}
    )
    created = invoices.run(db, spec, date(2025, 3, 1)).created
    mine = [i for i in created if i.tenant == "acme"]
    invoices.mark(db, mine[1].invoice_number, "paid")
    invoices.mark(db, next(i for i in created if i.tenant == "globex").invoice_number, "paid")
    found = invoices.list_invoices(db, "acme", "paid")
    assert [i.invoice_number for i in found] == [mine[1].invoice_number]
    assert len(invoices.list_invoices(db, None, "paid")) == 2
    assert refusal(invoices.list_invoices, db, "initech")[2] == (
        "tenants with a billing history: acme, globex"
    )
