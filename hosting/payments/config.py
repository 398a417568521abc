"""The Stripe client from `platform.payments`: key and webhook secret read from env or a file
when needed, never printed, never in an exception's text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hosting import secret_refs
from hosting.errors import BillingError, SecretError, UsageError
from hosting.spec.models import Payments, SecretRef, Spec

if TYPE_CHECKING:
    import stripe


@dataclass(frozen=True)
class Stripe:
    """What talking to Stripe needs. `repr` leaves the secrets out."""

    api_base: str
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    def client(self) -> stripe.StripeClient:
        import stripe

        # The library's api_base, per client rather than the module-wide `stripe.api_base`.
        return stripe.StripeClient(
            self.api_key, base_addresses={"api": self.api_base}, max_network_retries=2
        )


def payments_of(spec: Spec) -> Payments:
    payments = spec.platform.payments
    if payments is None:
        raise UsageError(
            "no payment provider: `platform.payments` is not in the file",
            "add `payments: {provider: stripe, api_key: {env: NAME}, webhook_secret: "
            "{env: NAME}}` under `platform`",
        )
    return payments


def read_secret(
    ref: SecretRef, what: str, base_dir: Path, env: Mapping[str, str] | None = None
) -> str:
    field = f"platform.payments.{what}"
    return secret_refs.read_secret(ref, field, base_dir, env, when="before running this command")
    assert ref.file is not None
    path = (base_dir / ref.file).resolve()
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(
            f"cannot read {path} (platform.payments.{what}): {exc.strerror}"
        ) from None
    if not value:
        raise SecretError(f"{path} is empty (platform.payments.{what})")
    return value


def stripe_config(
    spec: Spec,
    base_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    webhook: bool = False,
) -> Stripe:
    """The API key always; the webhook secret only for the webhook endpoint (`webhook=True`),
    so collecting does not need a secret it never uses."""
    payments = payments_of(spec)
    secret = (
        read_secret(payments.webhook_secret, "webhook_secret", base_dir, env) if webhook else ""
    )
    return Stripe(
        api_base=payments.api_base,
        api_key=read_secret(payments.api_key, "api_key", base_dir, env),
        webhook_secret=secret,
    )


def stripe_failure(exc: Exception, doing: str, api_base: str) -> BillingError:
    """A Stripe library error as one line for people: Stripe's own reason, except for a
    refused key, whose message can carry part of the key."""
    import stripe

    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return BillingError(
            f"{doing}: Stripe refused the API key",
            "check the key in the variable platform.payments.api_key names",
        )
    if isinstance(exc, stripe.APIConnectionError):
        return BillingError(
            f"{doing}: cannot reach Stripe at {api_base}",
            "is platform.payments.api_base right, and the network up?",
        )
    if isinstance(exc, stripe.StripeError):
        reason = exc.user_message or type(exc).__name__
        code = f" ({exc.code})" if exc.code else ""
        return BillingError(f"{doing}: Stripe said: {reason}{code}")
    return BillingError(f"{doing}: {type(exc).__name__}")
