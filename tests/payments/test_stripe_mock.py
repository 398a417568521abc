"""Issue 15's proof against stripe-mock, through the real CLI: 1. a tenant becomes a Stripe
customer once, across runs; 2. collecting twice makes one PaymentIntent; 3. a signed
`payment_intent.succeeded` marks the invoice paid; 4. a tampered one is refused with 400 and
changes nothing; 5. a replayed one changes nothing. Then a refund with its credit note.

Webhook signatures are made here by hand (HMAC-SHA256 of "TIMESTAMP.BODY" with the secret, as
Stripe documents it), not with the code under test."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hosting import store
from tests.conftest import REPO, run_hosting
from tests.payments.conftest import Recorder

API_KEY = "sk_test_hosting4f9a1c"  # stripe-mock refuses a `_` after sk_test_
WEBHOOK_SECRET = "whsec_hosting_b71e2d"


@pytest.fixture
def setup(tmp_path: Path, stripe_proxy: Recorder) -> dict[str, Any]:
    spec = {
        "version": 1,
        "platform": {
            "name": "demo",
            "domain": "apps.localhost",
            "public_ipv4": "127.0.0.1",
            "payments": {
                "provider": "stripe",
                "api_key": {"env": "T_STRIPE_KEY"},
                "webhook_secret": {"env": "T_STRIPE_WHSEC"},
                "api_base": stripe_proxy.url,
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
    (tmp_path / "hosting.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {
        "T_STRIPE_KEY": API_KEY,
        "T_STRIPE_WHSEC": WEBHOOK_SECRET,
        "HOSTING_STATE_DIR": str(tmp_path / "state"),
        "HOSTING_FILE": str(tmp_path / "hosting.yaml"),
        "PYTHONPATH": str(REPO),
    }
    done = hosting(env, "invoice", "run", "--as-of", "2026-11-03")
    numbers = [
        i["invoice_number"]
        for i in json.loads(hosting(env, "invoice", "list", "--json").stdout)["invoices"]
    ]
    assert len(numbers) == 2, done.stdout  # Sep 3–Oct 3 and Oct 3–Nov 3
    return {"env": env, "numbers": numbers, "store": tmp_path / "state" / "hosting.duckdb"}


def hosting(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = run_hosting(*args, env=env)
    for secret in (API_KEY, WEBHOOK_SECRET):
        assert secret not in done.stdout + done.stderr
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def status(setup: dict[str, Any], number: str) -> str:
    shown = json.loads(hosting(setup["env"], "invoice", "show", number, "--json").stdout)
    return str(shown["status"])


def test_customer_once_across_runs(setup: dict[str, Any], stripe_proxy: Recorder) -> None:
    first, second = setup["numbers"]
    hosting(setup["env"], "invoice", "collect", first)
    hosting(setup["env"], "invoice", "collect", second)  # a second process, a second run
    assert stripe_proxy.posts("/v1/customers") == ["demo/customer/acme"]
    body = stripe_proxy.bodies("/v1/customers")[0]
    assert body["email"] == ["billing@acme.test"] and body["name"] == ["Acme Corp"]
    with store.connect(setup["store"]) as conn:
        stored = conn.execute("SELECT tenant, customer_id FROM payment_customers").fetchall()
        used = conn.execute("SELECT DISTINCT customer_id FROM payment_intents").fetchall()
    assert len(stored) == 1 and stored[0][0] == "acme" and stored[0][1].startswith("cus_")
    assert used == [(stored[0][1],)]  # both invoices charged to that one customer


def test_collect_twice_one_payment_intent(setup: dict[str, Any], stripe_proxy: Recorder) -> None:
    number = setup["numbers"][0]
    one = hosting(setup["env"], "invoice", "collect", number)
    two = hosting(setup["env"], "invoice", "collect", number)
    assert stripe_proxy.posts("/v1/payment_intents") == [number]  # key = the invoice number
    body = stripe_proxy.bodies("/v1/payment_intents")[0]
    # Starter, a full month: 9.99 USD = 999 cents.
    assert body["amount"] == ["999"] and body["currency"] == ["usd"]
    assert body["metadata[invoice_number]"] == [number]
    assert "created" in one.stdout and "existing" in two.stdout
    with store.connect(setup["store"]) as conn:
        rows = conn.execute("SELECT invoice_number, intent_id FROM payment_intents").fetchall()
    assert len(rows) == 1 and rows[0][0] == number and rows[0][1].startswith("pi_")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def endpoint(setup: dict[str, Any]) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hosting", "payments", "webhook", "--listen", f"127.0.0.1:{port}"],
        env={**__import__("os").environ, **setup["env"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or exits)
    assert line.startswith("listening on"), proc.stderr.read() if proc.stderr else line
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        assert API_KEY not in out + err and WEBHOOK_SECRET not in out + err


def sign(payload: bytes, secret: str = WEBHOOK_SECRET) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post(url: str, payload: bytes, signature: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url,
        data=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def succeeded_event(setup: dict[str, Any], event_id: str) -> bytes:
    """A payment_intent.succeeded event for the collected invoice's PaymentIntent, shaped as
    Stripe sends it (the object as stripe-mock returns it, succeeded, with its charge)."""
    with store.connect(setup["store"]) as conn:
        row = conn.execute("SELECT intent_id FROM payment_intents").fetchone()
    assert row is not None
    req = urllib.request.Request(
        f"{setup['env']['PROXY']}/v1/payment_intents/{row[0]}",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        intent = json.loads(resp.read())
    intent.update(id=row[0], status="succeeded", latest_charge="ch_hosting_test_1")
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "type": "payment_intent.succeeded",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": intent},
    }
    return json.dumps(event).encode()


def snapshot(store_path: Path) -> list[Any]:
    with store.connect(store_path) as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("billing_invoices", "payment_intents", "payment_events")
        ]


@pytest.fixture
def collected(setup: dict[str, Any], stripe_proxy: Recorder) -> str:
    setup["env"]["PROXY"] = stripe_proxy.url
    number = setup["numbers"][0]
    hosting(setup["env"], "invoice", "collect", number)
    assert status(setup, number) == "pending"
    return str(number)


def test_signed_succeeded_marks_paid(setup: dict[str, Any], collected: str, endpoint: str) -> None:
    payload = succeeded_event(setup, "evt_hosting_paid_1")
    code, body = post(endpoint, payload, sign(payload))
    assert (code, body) == (200, {"outcome": "paid"})
    assert status(setup, collected) == "paid"
    with store.connect(setup["store"]) as conn:
        charge = conn.execute("SELECT charge_id, status FROM payment_intents").fetchall()
        events = conn.execute("SELECT event_id, invoice_number FROM payment_events").fetchall()
    assert charge == [("ch_hosting_test_1", "succeeded")]
    assert events == [("evt_hosting_paid_1", collected)]
    # The event is its own audit entry, in the chain `audit verify` checks.
    entries = json.loads(hosting(setup["env"], "audit", "--json").stdout)["entries"]
    [entry] = [e for e in entries if e["what"]["command"] == "payments webhook"]
    assert entry["what"]["args"]["event"] == "evt_hosting_paid_1"
    assert entry["what"]["args"]["invoice"] == collected
    assert hosting(setup["env"], "audit", "verify").returncode == 0


def test_tampered_refused_and_nothing_changes(
    setup: dict[str, Any], collected: str, endpoint: str
) -> None:
    payload = succeeded_event(setup, "evt_hosting_tampered")
    signature = sign(payload)
    before = snapshot(setup["store"])
    tampered = payload.replace(b'"livemode": false', b'"livemode": true ')
    assert tampered != payload and len(tampered) == len(payload)
    for body, sig in (
        (tampered, signature),  # a changed body
        (payload, sign(payload, "whsec_someone_else")),  # another secret
        (payload, ""),  # no signature at all
    ):
        code, answer = post(endpoint, body, sig)
        assert code == 400, answer
    assert snapshot(setup["store"]) == before
    assert status(setup, collected) == "pending"


def test_replay_changes_nothing(setup: dict[str, Any], collected: str, endpoint: str) -> None:
    payload = succeeded_event(setup, "evt_hosting_replayed")
    assert post(endpoint, payload, sign(payload))[0] == 200
    after_first = snapshot(setup["store"])
    code, body = post(endpoint, payload, sign(payload))  # the same event, signed again
    assert (code, body) == (200, {"outcome": "duplicate"})
    assert snapshot(setup["store"]) == after_first


def test_refund_issues_stripe_refund_and_credit_note(
    setup: dict[str, Any], collected: str, endpoint: str, stripe_proxy: Recorder
) -> None:
    payload = succeeded_event(setup, "evt_hosting_before_refund")
    assert post(endpoint, payload, sign(payload))[0] == 200
    part = hosting(setup["env"], "invoice", "refund", collected, "--amount", "4.00", "--json")
    first = json.loads(part.stdout)
    assert first["amount"] == "4.00" and first["invoice_status"] == "paid"
    assert first["credit_note"].startswith("CN-") and first["refund_id"].startswith("re_")
    rest = json.loads(hosting(setup["env"], "invoice", "refund", collected, "--json").stdout)
    assert rest["amount"] == "5.99" and rest["invoice_status"] == "refunded"  # 9.99 − 4.00
    bodies = stripe_proxy.bodies("/v1/refunds")
    assert [b["amount"] for b in bodies] == [["400"], ["599"]]
    assert status(setup, collected) == "refunded"
    again = hosting(setup["env"], "invoice", "refund", collected, ok=False)
    assert again.returncode == 1 and "refunded" in again.stderr
    assert len(stripe_proxy.posts("/v1/refunds")) == 2  # the refusal asked Stripe nothing


def test_dunning_collects_then_retries_through_stripe(
    setup: dict[str, Any], stripe_proxy: Recorder
) -> None:
    """Both invoices were issued by the Nov 3 run, due Nov 17. Day 1 past due (Nov 18) collects
    them (never collected); day 3 (Nov 20) retries each: it reads the customer's card on file
    (stripe-mock's customer has none) and creates no second PaymentIntent."""
    numbers = setup["numbers"]
    one = json.loads(
        hosting(setup["env"], "payments", "dunning", "--as-of", "2026-11-18", "--json").stdout
    )
    retries = [s for s in one["steps"] if s["step"] == "retry"]
    assert [(s["invoice_number"], s["day"]) for s in retries] == [(n, 1) for n in numbers]
    assert all(s["outcome"].startswith("collected: pi_") for s in retries)
    assert stripe_proxy.posts("/v1/payment_intents") == numbers
    assert stripe_proxy.posts("/v1/customers") == ["demo/customer/acme"]
    with store.connect(setup["store"]) as conn:
        rows = conn.execute(
            "SELECT intent_id, customer_id, attempts FROM payment_intents ORDER BY invoice_number"
        ).fetchall()
    assert [r[2] for r in rows] == [1, 1]
    before = len(stripe_proxy.calls)
    three = json.loads(
        hosting(setup["env"], "payments", "dunning", "--as-of", "2026-11-20", "--json").stdout
    )
    outcomes = [s["outcome"] for s in three["steps"] if s["step"] == "retry"]
    assert outcomes == [f"retried {r[0]}: not paid (no card on file)" for r in rows]
    customer = rows[0][1]
    assert [(m, p) for m, p, _, _ in stripe_proxy.calls[before:]] == [
        ("GET", f"/v1/customers/{customer}"),
        ("GET", f"/v1/customers/{customer}"),
    ]
    with store.connect(setup["store"]) as conn:
        again = conn.execute("SELECT attempts, last_error FROM payment_intents").fetchall()
    assert again == [(2, "no card on file"), (2, "no card on file")]
    assert stripe_proxy.posts("/v1/payment_intents") == numbers  # still one each


def test_collect_due_takes_pending_invoices_due_by_the_day(
    setup: dict[str, Any], stripe_proxy: Recorder
) -> None:
    """Both invoices came from the Nov 3 run, due Nov 17."""
    early = hosting(setup["env"], "invoice", "collect", "--due", "--as-of", "2026-11-16")
    assert early.stdout.strip() == "nothing to collect"
    assert stripe_proxy.calls == []
    done = json.loads(
        hosting(
            setup["env"], "invoice", "collect", "--due", "--as-of", "2026-11-17", "--json"
        ).stdout
    )["collected"]
    assert [(c["invoice_number"], c["created"]) for c in done] == [
        (n, True) for n in setup["numbers"]
    ]
    again = hosting(setup["env"], "invoice", "collect", "--due", "--as-of", "2026-11-17")
    assert again.stdout.strip() == "nothing to collect"  # collected ones are not due again
    assert stripe_proxy.posts("/v1/payment_intents") == setup["numbers"]


def test_refusals_ask_stripe_nothing(setup: dict[str, Any], stripe_proxy: Recorder) -> None:
    first = setup["numbers"][0]
    pending = hosting(setup["env"], "invoice", "refund", first, ok=False)
    assert pending.returncode == 1
    assert f"invoice {first} is pending: only a paid invoice is refunded" in pending.stderr
    hosting(setup["env"], "invoice", "mark", first, "paid")  # paid outside Stripe
    by_hand = hosting(setup["env"], "invoice", "refund", first, ok=False)
    assert "was not paid through Stripe" in by_hand.stderr
    paid = hosting(setup["env"], "invoice", "collect", first, ok=False)
    assert f"invoice {first} is paid: there is nothing to collect" in paid.stderr
    both = hosting(setup["env"], "invoice", "collect", first, "--due", ok=False)
    assert both.returncode == 1 and "not both" in both.stderr
    assert stripe_proxy.calls == []
