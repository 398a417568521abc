"""`subscription sync` read field by field, in process: what each recorded change returns, how
a tenant's rows are numbered, when a returning tenant restarts, the invoiced boundary, and a
refusal that names every tenant it refuses.

Found by scripts/mutation (target invoices): the older tests read a change's event, plan and
day, met one refused tenant at a time, and had no tenant before the one that changed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hosting import store
from hosting.billing import invoices, subscriptions
from hosting.billing.subscriptions import Change
from hosting.errors import BillingError
from hosting.spec import Spec
from tests.billing.helpers import make_spec, tenant

D = date


def rows(db: Path, tid: str) -> list[tuple[int, str]]:
    with store.connect(db) as conn:
        return conn.execute(
            "SELECT seq, event FROM subscription_history WHERE tenant = ? ORDER BY seq", [tid]
        ).fetchall()


def test_a_change_and_an_end_return_the_old_and_the_new_terms(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec(
        {"a": tenant("starter", D(2025, 1, 1)), "b": tenant("pro", D(2025, 1, 1), "yearly")}
    )
    subs = {
        c.tenant: c.subscription_id for c in subscriptions.sync(db, spec, D(2025, 1, 1)).changes
    }
    # a moves from starter monthly to pro yearly; b leaves the file.
    moved = make_spec({"a": tenant("pro", D(2025, 1, 1), "yearly")})
    changes = subscriptions.sync(db, moved, D(2025, 3, 5)).changes
    assert changes == [
        Change("a", "change", D(2025, 3, 5), subs["a"], "pro", "yearly", "starter", "monthly"),
        Change("b", "end", D(2025, 3, 5), subs["b"], None, None, "pro", "yearly"),
    ]


def test_each_tenants_history_rows_are_numbered_from_one_without_gaps(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    starter = make_spec({"a": tenant("starter", D(2025, 1, 1))})
    subscriptions.sync(db, starter, D(2025, 1, 1))
    subscriptions.sync(db, make_spec({"a": tenant("pro", D(2025, 1, 1))}), D(2025, 2, 1))
    subscriptions.sync(db, make_spec({"b": tenant("pro", D(2025, 3, 1))}), D(2025, 3, 1))
    subscriptions.sync(db, starter, D(2025, 4, 1))
    # 1, 2, 3… per tenant in the order recorded; a's return goes on at 4, b starts at 1.
    assert rows(db, "a") == [(1, "start"), (2, "change"), (3, "end"), (4, "start")]
    assert rows(db, "b") == [(1, "start"), (2, "end")]


def test_tenants_with_nothing_to_record_do_not_stop_the_ones_after_them(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({t: tenant("starter", D(2025, 1, 1)) for t in "abc"})
    subscriptions.sync(db, spec, D(2025, 1, 1))
    subscriptions.sync(
        db, make_spec({t: tenant("starter", D(2025, 1, 1)) for t in "bc"}), D(2025, 2, 1)
    )
    # a: ended and still gone; b: unchanged; c (sorted after both) moves to pro.
    spec = make_spec({"b": tenant("starter", D(2025, 1, 1)), "c": tenant("pro", D(2025, 1, 1))})
    changes = subscriptions.sync(db, spec, D(2025, 3, 1)).changes
    assert [(c.tenant, c.event, c.plan, c.effective) for c in changes] == [
        ("c", "change", "pro", D(2025, 3, 1))
    ]


def test_an_invoice_run_leaves_a_returning_tenant_to_sync_and_starts_the_new_one_after_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"a": tenant("starter", D(2025, 1, 1))}), D(2025, 1, 1))
    subscriptions.sync(db, make_spec({}), D(2025, 1, 20))
    # a is back in the file and b is new; the run records b's start, not a's return.
    spec = make_spec({"a": tenant("starter", D(2025, 1, 1)), "b": tenant("starter", D(2025, 1, 1))})
    created = invoices.run(db, spec, D(2025, 2, 1)).created
    # a's Jan 1 → Jan 20 (its end) and b's Jan 1 → Feb 1, in the order their periods end.
    assert [(i.tenant, i.period_start.date(), i.period_end.date()) for i in created] == [
        ("a", D(2025, 1, 1), D(2025, 1, 20)),
        ("b", D(2025, 1, 1), D(2025, 2, 1)),
    ]
    assert rows(db, "a") == [(1, "start"), (2, "end")]


def test_a_returning_tenant_restarts_no_earlier_than_its_end(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    spec = make_spec({"a": tenant("starter", D(2025, 1, 10))})
    first = subscriptions.sync(db, spec, D(2025, 1, 10)).changes[0].subscription_id
    subscriptions.sync(db, make_spec({}), D(2025, 4, 2))
    # Back on pro yearly, synced as of Mar 15: before the end recorded on Apr 2.
    back_on_pro = make_spec({"a": tenant("pro", D(2025, 1, 10), "yearly")})
    (back,) = subscriptions.sync(db, back_on_pro, D(2025, 3, 15)).changes
    assert back.subscription_id != first
    assert back == Change("a", "start", D(2025, 4, 2), back.subscription_id, "pro", "yearly")


def test_a_returning_tenant_restarts_no_earlier_than_its_started_day(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    subscriptions.sync(db, make_spec({"a": tenant("starter", D(2025, 1, 10))}), D(2025, 1, 10))
    subscriptions.sync(db, make_spec({}), D(2025, 2, 1))
    # Back with a new `started`, Jun 1, later than both the sync date and the end.
    back_in_june = make_spec({"a": tenant("starter", D(2025, 6, 1))})
    (back,) = subscriptions.sync(db, back_in_june, D(2025, 5, 7)).changes
    assert (back.event, back.effective) == ("start", D(2025, 6, 1))


def test_a_change_on_the_day_the_invoiced_period_ends_is_recorded(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    invoices.run(db, make_spec({"a": tenant("starter", D(2025, 1, 1))}), D(2025, 2, 1))
    pro = make_spec({"a": tenant("pro", D(2025, 1, 1))})
    # January (Jan 1 → Feb 1) is invoiced: a day inside it is refused, its end day is not.
    with pytest.raises(BillingError, match="already invoiced"):
        subscriptions.sync(db, pro, D(2025, 1, 31))
    changes = subscriptions.sync(db, pro, D(2025, 2, 1)).changes
    assert [(c.event, c.plan, c.effective) for c in changes] == [("change", "pro", D(2025, 2, 1))]


def test_a_sync_before_a_recorded_change_names_every_tenant_it_refuses(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"

    def both(plan: str) -> Spec:
        return make_spec({t: tenant(plan, D(2025, 1, 1)) for t in "ab"})

    subscriptions.sync(db, both("starter"), D(2025, 1, 1))
    subscriptions.sync(db, both("pro"), D(2025, 3, 1))
    with pytest.raises(BillingError) as refused:
        subscriptions.sync(db, both("free"), D(2025, 2, 1))
    assert refused.value.message == (
        "subscription sync refused, nothing recorded: "
        "a: its history already has a change on 2025-03-01; a change on 2025-02-01 cannot go "
        "before it (use --as-of 2025-03-01 or later); "
        "b: its history already has a change on 2025-03-01; a change on 2025-02-01 cannot go "
        "before it (use --as-of 2025-03-01 or later)"
    )
    assert refused.value.hint == "history is append-only and never rewritten behind an invoice"


def test_a_sync_behind_invoices_names_every_tenant_it_refuses(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    starter = make_spec({t: tenant("starter", D(2025, 1, 1)) for t in "ab"})
    invoices.run(db, starter, D(2025, 5, 1))  # Jan to Apr invoiced for both
    with pytest.raises(BillingError) as refused:
        subscriptions.sync(
            db, make_spec({t: tenant("pro", D(2025, 1, 1)) for t in "ab"}), D(2025, 4, 15)
        )
    assert refused.value.message == (
        "subscription sync refused, nothing recorded: "
        "a: the period up to 2025-05-01 is already invoiced; a change on 2025-04-15 would "
        "rewrite it (use --as-of 2025-05-01 or later); "
        "b: the period up to 2025-05-01 is already invoiced; a change on 2025-04-15 would "
        "rewrite it (use --as-of 2025-05-01 or later)"
    )
    assert rows(db, "a") == rows(db, "b") == [(1, "start")]
