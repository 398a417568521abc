"""Dunning on a fixed clock (issue 15): an unpaid invoice goes reminder → reminder →
suspension, each step once; payment lifts the suspension (by the webhook, or by hand and the
next dunning run). The days are worked by hand from the invoice's due date."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from hosting import store
from hosting.billing import invoices
from hosting.billing.subscriptions import utcnow
from hosting.payments import dunning, records, suspension, webhook
from hosting.payments.dunning import Planned, plan
from hosting.spec import loads
from tests.conftest import run_hosting

SPEC = {
    "version": 1,
    "platform": {
        "name": "demo",
        "domain": "apps.localhost",
        "public_ipv4": "127.0.0.1",
        "billing": {
            "legal_name": "Demo Hosting Ltd",
            "address": "1 Main St|Springfield",
            "payment_terms_days": 14,
            "suspend_after_days": 5,
        },
    },
    "tenants": {
        "acme": {
            "name": "Acme Corp",
            "email": "billing@acme.test",
            "plan": "starter",
            "started": "2026-09-03",
        }
    },
}


# Hand-worked: which steps fall due `days` into dunning, given those done.
@pytest.mark.parametrize(
    ("days", "suspend_after", "done", "expected"),
    [
        (0, 5, set(), []),
        (1, 5, set(), [Planned("retry", 1, True), Planned("reminder", 1, True)]),
        (2, 5, {("retry", 1), ("reminder", 1)}, []),
        (
            4,
            5,
            {("retry", 1), ("reminder", 1)},
            [Planned("retry", 3, True), Planned("reminder", 3, True)],
        ),
        # A run 8 days late does only day 7's retry and reminder; 1 and 3 are skipped.
        (
            8,
            None,
            set(),
            [
                Planned("retry", 1, False),
                Planned("retry", 3, False),
                Planned("retry", 7, True),
                Planned("reminder", 1, False),
                Planned("reminder", 3, False),
                Planned("reminder", 7, True),
            ],
        ),
        (
            5,
            5,
            {("retry", 1), ("reminder", 1), ("retry", 3), ("reminder", 3)},
            [Planned("suspend", 5, True)],
        ),
        (30, None, {(s, d) for s in ("retry", "reminder") for d in (1, 3, 7)}, []),
    ],
)
def test_plan(
    days: int, suspend_after: int | None, done: set[tuple[str, int]], expected: list[Planned]
) -> None:
    assert plan(days, suspend_after, done) == expected


@pytest.fixture
def issued(tmp_path: Path) -> tuple[Path, str, date]:
    spec = loads(yaml.safe_dump(SPEC, sort_keys=False))
    store_path = tmp_path / "state" / "hosting.duckdb"
    result = invoices.run(store_path, spec, date(2026, 10, 3))
    [inv] = result.created
    assert inv.due_date is not None
    # Issued by the run as of Oct 3 (its period's end too), due 14 days later.
    assert inv.due_date == date(2026, 10, 17)
    return store_path, inv.invoice_number, inv.due_date


def steps(taken: list[dunning.Taken]) -> list[tuple[str, int]]:
    return [(t.step, t.day) for t in taken]


def test_reminder_reminder_suspension_then_paid(issued: tuple[Path, str, date]) -> None:
    store_path, number, due = issued

    def run(day: date) -> list[dunning.Taken]:
        return dunning.run(store_path, day, suspend_after=5, gateway=None)

    assert run(due) == []  # due today: not overdue yet
    first = run(due + timedelta(days=1))
    assert steps(first) == [("retry", 1), ("reminder", 1)]
    assert first[0].outcome == "not retried: no payment provider (platform.payments)"
    assert run(due + timedelta(days=1)) == []  # the same day again: nothing twice
    assert steps(run(due + timedelta(days=3))) == [("retry", 3), ("reminder", 3)]
    assert run(due + timedelta(days=4)) == []
    assert suspension.suspended_tenants(store_path) == frozenset()
    fifth = run(due + timedelta(days=5))
    assert [(t.step, t.day, t.outcome) for t in fifth] == [("suspend", 5, "suspended")]
    assert suspension.suspended_tenants(store_path) == {"acme"}
    acc = suspension.account(store_path, "acme")
    assert acc.suspended is not None
    assert acc.suspended.suspended_on == due + timedelta(days=5)
    assert acc.suspended.invoice_number == number
    assert [(s.step, s.day) for s in acc.dunning] == [
        ("reminder", 1),
        ("retry", 1),
        ("reminder", 3),
        ("retry", 3),
        ("suspend", 5),
    ]
    # Paid by hand: the next run lifts the suspension.
    invoices.mark(store_path, number, "paid")
    lifted = run(due + timedelta(days=6))
    assert [(t.step, t.outcome) for t in lifted] == [("unsuspend", "unsuspended: paid")]
    assert suspension.suspended_tenants(store_path) == frozenset()
    [past] = suspension.account(store_path, "acme").suspensions
    assert (past.lifted_on, past.lifted_by) == (due + timedelta(days=6), "dunning")


def test_subscription_shows_the_suspension(issued: tuple[Path, str, date], tmp_path: Path) -> None:
    store_path, number, due = issued
    for offset in (1, 3, 5):
        dunning.run(store_path, due + timedelta(days=offset), suspend_after=5, gateway=None)
    (tmp_path / "hosting.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    env = {
        "HOSTING_STATE_DIR": str(store_path.parent),
        "HOSTING_FILE": str(tmp_path / "hosting.yaml"),
    }
    shown = run_hosting("subscription", "acme", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"SUSPENDED since {due + timedelta(days=5)}: invoice {number} unpaid" in shown.stdout
    assert f"{due + timedelta(days=3)} {number} day 3 reminder:" in shown.stdout
    as_json = json.loads(run_hosting("subscription", "acme", "--json", env=env).stdout)
    assert as_json["payments"]["suspended"]["invoice_number"] == number


SECRET = "whsec_dunning_test"


def _signed(event: dict[str, object]) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={mac}"


def test_payment_by_webhook_unsuspends(issued: tuple[Path, str, date]) -> None:
    store_path, number, due = issued
    with store.connect(store_path) as conn:
        records.add_intent(
            conn,
            records.Intent(
                number,
                "pi_dun_1",
                "acme",
                "cus_dun",
                999,
                "USD",
                "requires_payment_method",
                None,
                1,
                None,
            ),
            utcnow(),
        )
    for offset in (1, 3, 5):
        dunning.run(store_path, due + timedelta(days=offset), suspend_after=5, gateway=None)
    assert suspension.suspended_tenants(store_path) == {"acme"}
    payload, signature = _signed(
        {
            "id": "evt_dun_paid",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "pi_dun_1",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "latest_charge": "ch_dun",
                }
            },
        }
    )
    result = webhook.handle(store_path, payload, signature, SECRET)
    assert (result.status, result.outcome) == (200, "paid, unsuspended")
    assert suspension.suspended_tenants(store_path) == frozenset()
    assert invoices.get_invoice(store_path, number).status == "paid"


def test_platform_report_lists_the_suspension(issued: tuple[Path, str, date]) -> None:
    from hosting.reports import api

    store_path, number, due = issued
    spec = loads(yaml.safe_dump(SPEC, sort_keys=False))
    for offset in (1, 3, 5):
        dunning.run(store_path, due + timedelta(days=offset), suspend_after=5, gateway=None)
    before = api.platform_html(spec, store_path, due + timedelta(days=4))
    assert "Suspended tenants" not in before
    html = api.platform_html(spec, store_path, due + timedelta(days=5))
    assert "Suspended tenants" in html
    row = html[html.index("Suspended tenants") :]
    # Acme since Oct 22 (due Oct 17 + 5), its Starter invoice of 9.99, two reminders.
    assert "Acme Corp" in row and number in row and "9.99" in row
    assert '<td class="num">2</td>' in row
