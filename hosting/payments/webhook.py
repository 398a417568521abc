"""`hosting payments webhook --listen HOST:PORT`: Stripe's events, verified and applied once.

Every request's signature is checked with the library's `stripe.Webhook.construct_event`
(HMAC-SHA256 over the timestamp and the raw body, with the signing secret, within Stripe's
5-minute tolerance) before anything is read from it: a bad or missing signature is a 400 and
changes nothing. A verified event is recorded by its id in the same transaction as its
effect, so a replay (Stripe retries, an attacker resending a captured request) finds the id
and changes nothing again.

- `payment_intent.succeeded`: the invoice becomes paid, its charge id is recorded, and a
  suspension it caused is lifted (the next `apply` starts the tenant's sites again).
- `payment_intent.payment_failed`: a pending invoice becomes failed (dunning takes it from
  there). After paid it changes nothing: a late failure does not undo a payment.
- Any other event, or a PaymentIntent we did not create: recorded as ignored, 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from hosting import store
from hosting.billing.subscriptions import utcnow
from hosting.errors import BillingError
from hosting.payments import records, suspension

MAX_BODY = 1 << 20  # Stripe's events are a few kB


@dataclass(frozen=True)
class Outcome:
    status: int  # the HTTP status to answer
    event_id: str | None
    type: str | None
    invoice_number: str | None
    outcome: str  # paid, failed, duplicate, ignored: …, rejected: …
    changed: bool  # whether the store changed


def handle(store_path: Path, payload: bytes, signature: str | None, secret: str) -> Outcome:
    import stripe

    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret)
    except stripe.SignatureVerificationError:
        return Outcome(400, None, None, None, "rejected: bad signature", False)
    except ValueError:
        return Outcome(400, None, None, None, "rejected: not a JSON event", False)
    event_id, kind = str(event.id), str(event.type)
    obj: Any = event.data.object
    intent_id = str(obj.id) if kind.startswith("payment_intent.") else None
    now = utcnow()
    with store.connect(store_path) as conn, store.transaction(conn):
        if records.seen_event(conn, event_id) is not None:
            return Outcome(200, event_id, kind, None, "duplicate", False)
        intent = records.intent_by_id(conn, intent_id) if intent_id else None
        number = intent.invoice_number if intent else None
        if intent is None or kind not in (
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
        ):
            why = "ignored: not ours" if intent_id and intent is None else "ignored: type"
            records.add_event(conn, event_id, kind, intent_id, number, why, now)
            return Outcome(200, event_id, kind, number, why, True)
        assert number is not None
        if kind == "payment_intent.succeeded":
            charge = getattr(obj, "latest_charge", None)
            charge_id = None if charge is None else str(getattr(charge, "id", charge))
            records.update_intent(conn, number, now, status="succeeded", charge_id=charge_id)
            changed = records.set_status(conn, number, "paid", now)
            outcome = "paid" if changed else "ignored: already paid"
            if changed:
                lifted = suspension.lift_if_settled(conn, intent.tenant, now.date(), event_id)
                outcome += ", unsuspended" if lifted else ""
        else:
            error = getattr(obj, "last_payment_error", None)
            reason = str(getattr(error, "message", None) or "payment failed")
            current = records.invoice(conn, number).status
            if current in ("pending", "failed"):  # a dunning retry fails again: note why
                records.update_intent(conn, number, now, status=str(obj.status), error=reason)
                records.set_status(conn, number, "failed", now)
                outcome = "failed" if current == "pending" else "failed again"
            else:
                outcome = f"ignored: invoice is {current}"
        records.add_event(conn, event_id, kind, intent_id, number, outcome, now)
        return Outcome(200, event_id, kind, number, outcome, True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._answer(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            return
        body = self.rfile.read(length)
        try:
            result = handle(
                self.server.store_path,
                body,
                self.headers.get("Stripe-Signature"),
                self.server.secret,
            )
        except BillingError as exc:  # e.g. a transition SPEC §3 refuses: Stripe retries
            self.server.on_outcome(Outcome(500, None, None, None, exc.message, False))
            self._answer(500, {"error": exc.message})
            return
        # Reported before the answer: whoever sees the answer can rely on the report.
        self.server.on_outcome(result)
        self._answer(result.status, {"outcome": result.outcome})

    def do_GET(self) -> None:
        self._answer(405, {"error": "POST Stripe events here"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # on_outcome reports each event; the default log would go to stderr unasked


class _Server(HTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        store_path: Path,
        secret: str,
        on_outcome: Callable[[Outcome], None],
    ) -> None:
        super().__init__(address, _Handler)
        self.store_path = store_path
        self.secret = secret
        self.on_outcome = on_outcome


def make_server(
    host: str,
    port: int,
    store_path: Path,
    secret: str,
    on_outcome: Callable[[Outcome], None],
) -> HTTPServer:
    """The endpoint bound to HOST:PORT (0: any free port), not yet serving."""
    return _Server((host, port), store_path, secret, on_outcome)


def serve(
    host: str,
    port: int,
    store_path: Path,
    secret: str,
    on_outcome: Callable[[Outcome], None],
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Answer one request at a time (events are small; the store takes one writer) until
    interrupted."""
    server = make_server(host, port, store_path, secret, on_outcome)
    try:
        on_ready()
        server.serve_forever()
    finally:
        server.server_close()
