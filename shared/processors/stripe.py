"""Stripe as a processor: the customer, its subscriptions and invoices (P11, P13, P24, P26).

Export is an allow-list of the customer, its subscriptions and its invoices: ids, names, billing
contact, plan, amounts, periods, statuses. No payment method, card, source or charge field is
ever read into it (P13). Erasure is `DELETE /v1/customers/{id}`, which is permanent and cancels
the customer's subscriptions at once; Stripe itself keeps the payment records it must keep by law
(its own obligation as a regulated payment provider, stated in the record of processing).

When billing (issue 3) is deployed, erasure first calls its hook, `BillingService.erase_account`
(wired by shared/processors/registry.py): it deletes every customer billing linked to the
account and marks the account's billing erased, so late Stripe webhooks change nothing. The
adapter then deletes any customer still found by the account's `stripe_customer_id` or by the
login email, so a customer made outside checkout is not missed. The stripe library is given the guarded session of
`shared.processors.http`: its calls pass the same egress gate (P14). It never retries (the
library's retries sleep): the privacy worker does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import stripe
from google.api_core import exceptions as google_exceptions

from shared.config import Settings
from shared.processors import ProcessorError, StepOutcome, Subject
from shared.processors.base import not_configured, pick, run_erase
from shared.processors.http import EgressRefused, egress_allowed, guarded_session, retry_after_seconds

try:
    from shared.adapters.stripe_api import StripeUnavailable
except ImportError:  # a build without billing (issue 3): its hook is not wired either

    class StripeUnavailable(Exception):  # type: ignore[no-redef]
        """Stand-in for billing's transient Stripe failure."""


NAME = "Stripe"
PAGE = 100

ADDRESS = ("line1", "line2", "city", "postal_code", "state", "country")
CUSTOMER = ("id", "created", "email", "name", "phone", "description", "preferred_locales", "currency")
CUSTOMER_MORE = ("tax_exempt", "delinquent", "balance", "metadata", "livemode")
SUBSCRIPTION = (
    "id",
    "status",
    "created",
    "start_date",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_start",
    "trial_end",
    "currency",
)
INVOICE = (
    "id",
    "number",
    "status",
    "created",
    "currency",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "subtotal",
    "total",
    "period_start",
    "period_end",
    "billing_reason",
    "customer_email",
    "customer_name",
    "customer_phone",
)


def _plain(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj) if isinstance(obj, dict) else {}


def _address(value: Any) -> dict[str, Any] | None:
    return pick(value, ADDRESS) if isinstance(value, dict) else None


def customer_fields(customer: dict[str, Any]) -> dict[str, Any]:
    out = pick(customer, CUSTOMER + CUSTOMER_MORE)
    out["address"] = _address(customer.get("address"))
    shipping = customer.get("shipping")
    if isinstance(shipping, dict):
        out["shipping"] = {**pick(shipping, ("name", "phone")), "address": _address(shipping.get("address"))}
    tax_ids = (customer.get("tax_ids") or {}).get("data") if isinstance(customer.get("tax_ids"), dict) else None
    if isinstance(tax_ids, list):
        out["tax_ids"] = [pick(t, ("type", "value", "country")) for t in tax_ids]
    return out


def _price(item: dict[str, Any]) -> dict[str, Any]:
    price = item.get("price") or item.get("plan") or {}
    if not isinstance(price, dict):
        return {"id": price}
    recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else {}
    return {
        **pick(price, ("id", "nickname", "unit_amount", "amount", "currency", "interval")),
        **({"interval": recurring.get("interval")} if recurring else {}),
        "product": price.get("product") if isinstance(price.get("product"), str) else None,
    }


def subscription_fields(sub: dict[str, Any]) -> dict[str, Any]:
    out = pick(sub, SUBSCRIPTION)
    items = (sub.get("items") or {}).get("data") if isinstance(sub.get("items"), dict) else None
    out["items"] = [
        {**pick(item, ("id", "quantity", "current_period_start", "current_period_end")), "price": _price(item)}
        for item in (items or [])
        if isinstance(item, dict)
    ]
    return out


def invoice_fields(invoice: dict[str, Any]) -> dict[str, Any]:
    out = pick(invoice, INVOICE)
    out["customer_address"] = _address(invoice.get("customer_address"))
    lines = (invoice.get("lines") or {}).get("data") if isinstance(invoice.get("lines"), dict) else None
    out["lines"] = [
        pick(line, ("description", "amount", "currency", "quantity"))
        for line in (lines or [])
        if isinstance(line, dict)
    ]
    return out


def _outcome(exc: stripe.StripeError, what: str) -> StepOutcome:
    status = exc.http_status
    code = exc.code or type(exc).__name__
    detail = f"{what}: " + (f"HTTP {status} " if status else "") + code
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, EgressRefused):
            return StepOutcome("failed", f"{what}: egress refused (P14)")
        return StepOutcome("retry", f"{what}: connection error")
    if status == 404:
        return StepOutcome("not_found", detail)
    if status == 429 or isinstance(exc, stripe.RateLimitError):
        headers = exc.headers or {}
        retry_after = headers.get("retry-after") or headers.get("Retry-After")
        return StepOutcome("retry", detail, retry_after=retry_after_seconds(retry_after))
    if status is None or status >= 500 or status == 409:
        return StepOutcome("retry", detail)
    return StepOutcome("failed", detail)


EraseHook = Callable[[str], Any]  # billing's erase_account(account_id) -> {"customers": n, "deleted": n}
_TRANSIENT_STORE = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.Aborted,
    google_exceptions.InternalServerError,
    google_exceptions.TooManyRequests,
)


def _hook_outcome(exc: Exception) -> StepOutcome | None:
    """The outcome of a failure of billing's hook, or None for a bug (which run_erase reports as failed)."""
    if isinstance(exc, stripe.StripeError):
        return _outcome(exc, "billing.erase_account")
    if isinstance(exc, StripeUnavailable):  # billing's client: connection error, 429 or 5xx
        return StepOutcome("retry", "billing.erase_account: Stripe unavailable")
    if isinstance(exc, _TRANSIENT_STORE):
        return StepOutcome("retry", f"billing.erase_account: {type(exc).__name__}")
    return None


class StripeAdapter:
    name = NAME

    def __init__(
        self, settings: Settings, client: stripe.StripeClient | None = None, erase_hook: EraseHook | None = None
    ) -> None:
        self.settings = settings
        self._client = client
        self.erase_hook = erase_hook

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            if not self.settings.stripe_secret_key:
                raise not_configured(NAME, "STRIPE_SECRET_KEY")
            base = self.settings.stripe_api_base
            if not egress_allowed(base, local=self.settings.is_local):
                raise ProcessorError(StepOutcome("failed", "egress refused (P14)"))
            self._client = stripe.StripeClient(
                self.settings.stripe_secret_key,
                base_addresses={"api": base},
                max_network_retries=0,
                http_client=stripe.RequestsClient(
                    timeout=self.settings.processor_timeout_seconds,
                    session=guarded_session(local=self.settings.is_local),
                ),
            )
        return self._client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """One Stripe call; None when Stripe answers 404, ProcessorError for anything else that is not 2xx."""
        try:
            return _plain(fn(*args, **kwargs))
        except stripe.StripeError as exc:
            outcome = _outcome(exc, what)
            if outcome.status == "not_found":
                return None
            raise ProcessorError(outcome) from exc

    def _list(self, what: str, fn: Callable[..., Any], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        starting_after: str | None = None
        while True:
            page = self._call(
                what,
                fn,
                params={**params, "limit": PAGE, **({"starting_after": starting_after} if starting_after else {})},
            )
            data = (page or {}).get("data") or []
            yield from (d for d in data if isinstance(d, dict))
            if not (page or {}).get("has_more") or not data:
                return
            starting_after = data[-1].get("id")

    def _customers(self, subject: Subject) -> list[dict[str, Any]]:
        v1 = self.client.v1
        found: dict[str, dict[str, Any]] = {}
        if subject.stripe_customer_id:
            customer = self._call("customers.retrieve", v1.customers.retrieve, subject.stripe_customer_id)
            if customer and not customer.get("deleted"):
                found[customer["id"]] = customer
        if subject.email:
            for customer in self._list("customers.list", v1.customers.list, {"email": subject.email}):
                if not customer.get("deleted") and customer.get("id"):
                    found.setdefault(customer["id"], customer)
        return list(found.values())

    def export(self, subject: Subject) -> dict[str, Any]:
        v1 = self.client.v1
        customers = []
        for customer in self._customers(subject):
            cid = customer["id"]
            subs = self._list("subscriptions.list", v1.subscriptions.list, {"customer": cid, "status": "all"})
            invoices = self._list("invoices.list", v1.invoices.list, {"customer": cid})
            customers.append(
                {
                    "customer": customer_fields(customer),
                    "subscriptions": [subscription_fields(s) for s in subs],
                    "invoices": [invoice_fields(i) for i in invoices],
                }
            )
        return {"found": bool(customers), "customers": customers}

    def erase(self, subject: Subject) -> StepOutcome:
        return run_erase(self.name, lambda: self._erase(subject))

    def _erase(self, subject: Subject) -> StepOutcome:
        deleted = 0
        if self.erase_hook is not None:
            try:
                result = self.erase_hook(subject.account_id)
            except Exception as exc:
                outcome = _hook_outcome(exc)
                if outcome is None:
                    raise
                return outcome
            deleted += int((result or {}).get("deleted", 0)) if isinstance(result, dict) else 0
        customers = self._customers(subject)
        for customer in customers:
            if self._call("customers.delete", self.client.v1.customers.delete, customer["id"]) is not None:
                deleted += 1
        if not deleted:
            return StepOutcome("not_found", "no Stripe customer")
        return StepOutcome("done", f"{deleted} Stripe customer(s) deleted")
