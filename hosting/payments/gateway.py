"""The Stripe calls payments make, through the official library. Each create carries an
idempotency key derived from our own record (tenant, invoice number, retry day), so a call
repeated after a crash gets Stripe's first answer back instead of a second object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hosting.payments.config import Stripe, stripe_failure


@dataclass(frozen=True)
class Charged:
    intent_id: str
    status: str
    charge_id: str | None
    error: str | None  # a declined card: Stripe's reason


class Gateway:
    def __init__(self, config: Stripe, platform: str) -> None:
        self.config = config
        self.platform = platform
        self._client = config.client()

    def _fail(self, exc: Exception, doing: str) -> Exception:
        return stripe_failure(exc, doing, self.config.api_base)

    def create_customer(self, tenant: str, name: str, email: str) -> str:
        import stripe

        try:
            found = self._client.v1.customers.create(
                params={
                    "name": name,
                    "email": email,
                    "metadata": {"hosting_tenant": tenant, "hosting_platform": self.platform},
                },
                options={"idempotency_key": f"{self.platform}/customer/{tenant}"},
            )
        except stripe.StripeError as exc:
            raise self._fail(exc, f"creating the Stripe customer of {tenant}") from None
        return str(found.id)

    def default_payment_method(self, customer_id: str) -> str | None:
        """The card on file, which an off-session charge needs (None: the tenant has none)."""
        import stripe

        try:
            found = self._client.v1.customers.retrieve(customer_id)
        except stripe.StripeError as exc:
            raise self._fail(exc, f"reading the Stripe customer {customer_id}") from None
        settings = getattr(found, "invoice_settings", None)
        method = getattr(settings, "default_payment_method", None) if settings else None
        if method is None:
            return None
        return str(method if isinstance(method, str) else method.id)

    def create_intent(
        self, number: str, tenant: str, customer_id: str, amount_cents: int, currency: str
    ) -> Charged:
        """One PaymentIntent per invoice: the invoice number is the idempotency key. With a
        card on file it is confirmed at once, off session; without, it waits for one."""
        import stripe

        method = self.default_payment_method(customer_id)
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "customer": customer_id,
            "description": f"Invoice {number}",
            "metadata": {"invoice_number": number, "hosting_tenant": tenant},
        }
        if method is not None:
            params.update(payment_method=method, confirm=True, off_session=True)
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": number},
            )
        except stripe.CardError as exc:
            return _declined(exc, number)
        except stripe.StripeError as exc:
            raise self._fail(exc, f"collecting {number}") from None
        return _charged(intent)

    def retry(self, intent_id: str, customer_id: str, key: str) -> Charged:
        """Confirm the invoice's PaymentIntent again with the card on file (dunning)."""
        import stripe

        method = self.default_payment_method(customer_id)
        if method is None:
            return Charged(intent_id, "requires_payment_method", None, "no card on file")
        try:
            intent = self._client.v1.payment_intents.confirm(
                intent_id,
                params={"payment_method": method, "off_session": True},
                options={"idempotency_key": key},
            )
        except stripe.CardError as exc:
            return _declined(exc, intent_id)
        except stripe.StripeError as exc:
            raise self._fail(exc, f"retrying {intent_id}") from None
        return _charged(intent)

    def refund(self, intent_id: str, amount_cents: int, key: str) -> str:
        import stripe

        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": intent_id, "amount": amount_cents},
                options={"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            raise self._fail(exc, f"refunding {intent_id}") from None
        return str(refund.id)


def _charged(intent: Any) -> Charged:
    charge = getattr(intent, "latest_charge", None)
    charge_id = None if charge is None else str(charge if isinstance(charge, str) else charge.id)
    return Charged(str(intent.id), str(intent.status), charge_id, None)


def _declined(exc: Any, fallback_id: str) -> Charged:
    """A declined card still leaves a PaymentIntent (in the error); the decline is its state."""
    error = getattr(exc, "error", None)
    intent = getattr(error, "payment_intent", None) if error is not None else None
    intent_id = str(intent.id) if intent is not None else fallback_id
    return Charged(intent_id, "requires_payment_method", None, exc.user_message or "declined")
