"""The Stripe API, as the billing service uses it (processor "Stripe" in shared/datamap.py, P14, P24).

One `stripe.StripeClient` per process (thread-safe), pointed at `STRIPE_API_BASE` (api.stripe.com;
localstripe locally), with a short timeout so a webhook answers before Stripe gives up on it.
Objects come back as plain dicts. Errors are translated once, here:

- 404 -> `None` (a deleted customer, an unknown subscription): callers decide what gone means;
- connection errors, timeouts, 429 and 5xx -> `StripeUnavailable` (transient: answer 5xx, retry);
- anything else (a bad key, a bad request) propagates as the stripe library raised it: a bug.

Only ids, the account id (metadata), the login email and names are sent; never anything else.
"""

from __future__ import annotations

from typing import Any, Protocol

import stripe

from shared.config import Settings
from shared.errors import Unavailable
from shared.observability import get_logger

log = get_logger(__name__)

Obj = dict[str, Any]


class StripeUnavailable(Unavailable):
    """Stripe could not be reached or answered 429/5xx: a transient failure (503 at the HTTP edge)."""

    slug = "payment-provider-unavailable"

    def __init__(self, what: str) -> None:
        super().__init__("The payment provider cannot be reached; try again shortly.", retry_after=30)
        self.what = what  # which call failed, for the logs (never shown to the client)


class StripeApi(Protocol):
    """What the billing service needs from Stripe (tests give it a fake or point it at localstripe)."""

    def create_customer(self, *, email: str, name: str, account_id: str, idempotency_key: str) -> Obj: ...
    def create_checkout_session(self, params: Obj) -> Obj: ...
    def create_portal_session(self, params: Obj) -> Obj: ...
    def customer(self, customer_id: str) -> Obj | None: ...
    def subscription(self, subscription_id: str) -> Obj | None: ...
    def invoice(self, invoice_id: str) -> Obj | None: ...
    def delete_customer(self, customer_id: str) -> bool: ...
    def end_subscription_at_period_end(self, subscription_id: str) -> Obj | None: ...


def _plain(obj: Any) -> Obj:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StripeClientApi:
    """`StripeApi` over the stripe library."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeClientApi:
        from shared.processors.http import guarded_session

        settings.require_keys("stripe_secret_key")
        client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=1,
            # The egress guard of every processor call (P14): only api.stripe.com (loopback locally).
            http_client=stripe.RequestsClient(
                timeout=settings.stripe_timeout_seconds, session=guarded_session(local=settings.is_local)
            ),
        )
        return cls(client)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Obj | None:
        try:
            return _plain(fn(*args, **kwargs))
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            log.warning("stripe unavailable", call=what, error=type(exc).__name__)
            raise StripeUnavailable(what) from exc
        except stripe.APIError as exc:
            if exc.http_status is None or exc.http_status >= 500:
                log.warning("stripe unavailable", call=what, error=type(exc).__name__, status=exc.http_status)
                raise StripeUnavailable(what) from exc
            raise

    def _required(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Obj:
        found = self._call(what, fn, *args, **kwargs)
        if found is None:
            raise LookupError(f"stripe {what}: not found")
        return found

    def create_customer(self, *, email: str, name: str, account_id: str, idempotency_key: str) -> Obj:
        params = {"email": email, "name": name, "metadata": {"account_id": account_id}}
        options = {"idempotency_key": idempotency_key}
        return self._required("customers.create", self.client.v1.customers.create, params=params, options=options)

    def create_checkout_session(self, params: Obj) -> Obj:
        return self._required("checkout.sessions.create", self.client.v1.checkout.sessions.create, params=params)

    def create_portal_session(self, params: Obj) -> Obj:
        return self._required(
            "billing_portal.sessions.create", self.client.v1.billing_portal.sessions.create, params=params
        )

    def customer(self, customer_id: str) -> Obj | None:
        found = self._call("customers.retrieve", self.client.v1.customers.retrieve, customer_id)
        return None if found is None or found.get("deleted") else found

    def subscription(self, subscription_id: str) -> Obj | None:
        return self._call("subscriptions.retrieve", self.client.v1.subscriptions.retrieve, subscription_id)

    def invoice(self, invoice_id: str) -> Obj | None:
        return self._call("invoices.retrieve", self.client.v1.invoices.retrieve, invoice_id)

    def delete_customer(self, customer_id: str) -> bool:
        """Delete a customer (Stripe cancels its subscriptions at once). False when it was already gone."""
        return self._call("customers.delete", self.client.v1.customers.delete, customer_id) is not None

    def end_subscription_at_period_end(self, subscription_id: str) -> Obj | None:
        """Let a subscription run to the end of its paid period and not renew (None when Stripe has no such one)."""
        return self._call(
            "subscriptions.update",
            self.client.v1.subscriptions.update,
            subscription_id,
            params={"cancel_at_period_end": True},
        )
