"""The webhook's effects, event by event (in process, signed by hand): failed, failed again,
paid, a late failure after paid, and a PaymentIntent that is not ours."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from hosting import store
from hosting.billing import invoices
from hosting.billing.subscriptions import utcnow
from hosting.payments import records, webhook
from tests.payments.test_dunning import SECRET, _signed, issued

__all__ = ["issued"]  # the fixture, shared with test_dunning


def event(event_id: str, kind: str, intent: str, **obj: Any) -> tuple[bytes, str]:
    return _signed(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": {"id": intent, "object": "payment_intent", **obj}},
        }
    )


def test_failed_failed_again_paid_then_a_late_failure(issued: tuple[Path, str, date]) -> None:
    store_path, number, _ = issued
    with store.connect(store_path) as conn:
        records.add_intent(
            conn,
            records.Intent(
                number, "pi_ev", "acme", "cus_ev", 999, "USD", "processing", None, 1, None
            ),
            utcnow(),
        )

    def send(event_id: str, kind: str, **obj: Any) -> str:
        payload, signature = event(event_id, kind, "pi_ev", **obj)
        result = webhook.handle(store_path, payload, signature, SECRET)
        assert result.status == 200 and result.invoice_number == number
        return result.outcome

    declined = {
        "status": "requires_payment_method",
        "last_payment_error": {"message": "Your card was declined."},
    }
    assert send("evt_f1", "payment_intent.payment_failed", **declined) == "failed"
    assert invoices.get_invoice(store_path, number).status == "failed"
    assert send("evt_f2", "payment_intent.payment_failed", **declined) == "failed again"
    with store.connect(store_path) as conn:
        assert records.intent_of(conn, number) is not None
        row = conn.execute("SELECT status, last_error FROM payment_intents").fetchone()
    assert row == ("requires_payment_method", "Your card was declined.")
    assert (
        send("evt_ok", "payment_intent.succeeded", status="succeeded", latest_charge="ch_ev")
        == "paid"
    )
    assert (
        send("evt_late", "payment_intent.payment_failed", **declined) == "ignored: invoice is paid"
    )
    inv = invoices.get_invoice(store_path, number)
    assert inv.status == "paid" and inv.paid_at is not None


def test_an_intent_that_is_not_ours_is_recorded_and_ignored(issued: tuple[Path, str, date]) -> None:
    store_path, number, _ = issued
    payload, signature = event(
        "evt_other", "payment_intent.succeeded", "pi_someone_else", status="succeeded"
    )
    result = webhook.handle(store_path, payload, signature, SECRET)
    assert (result.status, result.outcome, result.invoice_number) == (
        200,
        "ignored: not ours",
        None,
    )
    assert invoices.get_invoice(store_path, number).status == "pending"
    # Recorded, so its replay is a duplicate.
    assert webhook.handle(store_path, payload, signature, SECRET).outcome == "duplicate"
