"""The billing domain: what we keep of Stripe objects, and nothing more (P13).

Stripe holds the payment method; we keep an allow-list: Stripe ids, plan, status, periods, amounts,
currency, the hosted invoice URL and the billing contact. Every value written to Firestore is built
field by field by the `project_*` functions below from a Stripe object; nothing is ever copied
wholesale, so whatever else a payload carries (card brand, last4, expiry, fingerprint, a card
number typed in a free-text field...) cannot reach storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.billing.plans import Catalogue

# Firestore collections (declared in shared/datamap.py).
BILLING_ACCOUNTS = "billing_accounts"  # one per account: customer id, contact, subscriptions, derived plan
BILLING_CUSTOMERS = "billing_customers"  # Stripe customer id -> account id
BILLING_INVOICES = "billing_invoices"  # one per Stripe invoice
BILLING_EVENTS_PENDING = "billing_events_pending"  # parked (unknown customer) and failed events, ids only

# Subscription statuses that carry the plan's entitlements. past_due keeps them while Stripe retries
# the payment (Smart Retries); unpaid, paused, incomplete, canceled... do not.
ENTITLED_STATUSES = frozenset({"active", "trialing", "past_due"})
FINAL_STATUSES = frozenset({"canceled", "incomplete_expired"})
KEEP_FINISHED_SUBSCRIPTIONS = 5

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")


def _id(value: Any) -> str | None:
    """A Stripe reference is an id or, when expanded, an object with an id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        ref = value.get("id")
        return ref if isinstance(ref, str) else None
    return None


def _ts(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def subscription_price(obj: Mapping[str, Any]) -> str | None:
    """The price of a subscription's first item (`price`, or `plan` on older API versions and localstripe)."""
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    for holder in (first, obj):
        for key in ("price", "plan"):
            ref = _id(holder.get(key))
            if ref:
                return ref
    return None


def _period(obj: Mapping[str, Any], name: str) -> datetime | None:
    """current_period_* lives on the subscription items since API 2025-03-31, on the subscription before."""
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping) and _ts(item.get(name)):
                return _ts(item.get(name))
    return _ts(obj.get(name))


def project_subscription(obj: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """The allow-listed view of a Stripe subscription."""
    price = subscription_price(obj)
    plan = catalogue.plan_for_price(price)
    return {
        "id": _id(obj.get("id")),
        "customer_id": _id(obj.get("customer")),
        "status": _str(obj.get("status"), 40) or "unknown",
        "price_id": price,
        "plan": plan.id if plan else None,
        "current_period_start": _period(obj, "current_period_start"),
        "current_period_end": _period(obj, "current_period_end"),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "cancel_at": _ts(obj.get("cancel_at")),
        "canceled_at": _ts(obj.get("canceled_at")),
        "ended_at": _ts(obj.get("ended_at")),
        "trial_end": _ts(obj.get("trial_end")),
        "collection_paused": bool(obj.get("pause_collection")),
        "created": _ts(obj.get("created")),
    }


def project_contact(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The billing contact of a Stripe customer: name, email, postal address. No phone, no payment data."""
    address = obj.get("address") if isinstance(obj.get("address"), Mapping) else {}
    assert isinstance(address, Mapping)
    return {
        "name": _str(obj.get("name")),
        "email": _str(obj.get("email"), 320),
        "address": {key: _str(address.get(key)) for key in ADDRESS_FIELDS} if address else None,
    }


def invoice_subscription(obj: Mapping[str, Any]) -> str | None:
    """The subscription of an invoice (`parent.subscription_details` since API 2025-03-31)."""
    parent = obj.get("parent")
    if isinstance(parent, Mapping):
        details = parent.get("subscription_details")
        if isinstance(details, Mapping) and _id(details.get("subscription")):
            return _id(details.get("subscription"))
    return _id(obj.get("subscription"))


def project_invoice(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The allow-listed view of a Stripe invoice: ids, status, amounts, currency, hosted URL, periods."""
    transitions = obj.get("status_transitions") if isinstance(obj.get("status_transitions"), Mapping) else {}
    assert isinstance(transitions, Mapping)
    url = obj.get("hosted_invoice_url")
    return {
        "id": _id(obj.get("id")),
        "customer_id": _id(obj.get("customer")),
        "subscription_id": invoice_subscription(obj),
        "number": _str(obj.get("number"), 100),
        "status": _str(obj.get("status"), 40),
        "billing_reason": _str(obj.get("billing_reason"), 60),
        "currency": _str(obj.get("currency"), 10),
        "total": _int(obj.get("total")),
        "amount_due": _int(obj.get("amount_due")),
        "amount_paid": _int(obj.get("amount_paid")),
        "amount_remaining": _int(obj.get("amount_remaining")),
        "attempt_count": _int(obj.get("attempt_count")) or 0,
        "hosted_invoice_url": url if isinstance(url, str) and url.startswith("https://") else None,
        "period_start": _ts(obj.get("period_start")),
        "period_end": _ts(obj.get("period_end")),
        "created": _ts(obj.get("created")),
        "paid_at": _ts(transitions.get("paid_at")),
    }


@dataclass(frozen=True)
class EventRef:
    """What the webhook keeps of a verified Stripe event: its id, type and the ids it names.

    Handlers re-read every object they act on from the Stripe API, so this is all a parked or failed
    event needs to be replayed later, and no payload is ever stored.
    """

    id: str
    type: str
    created: int
    object_type: str
    object_id: str | None
    customer_id: str | None
    subscription_id: str | None
    account_hint: str | None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> EventRef:
        data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        assert isinstance(data, Mapping)
        obj = data.get("object") if isinstance(data.get("object"), Mapping) else {}
        assert isinstance(obj, Mapping)
        kind = _str(obj.get("object"), 60) or ""
        object_id = _id(obj.get("id"))
        customer = object_id if kind == "customer" else _id(obj.get("customer"))
        if kind == "subscription":
            subscription = object_id
        elif kind == "invoice":
            subscription = invoice_subscription(obj)
        else:
            subscription = _id(obj.get("subscription"))
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        assert isinstance(metadata, Mapping)
        hint = _str(obj.get("client_reference_id"), 128) or _str(metadata.get("account_id"), 128)
        return cls(
            id=str(event.get("id") or ""),
            type=str(event.get("type") or ""),
            created=_int(event.get("created")) or 0,
            object_type=kind,
            object_id=object_id,
            customer_id=customer,
            subscription_id=subscription,
            account_hint=hint,
        )

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, data: Mapping[str, Any]) -> EventRef:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass
class BillingState:
    """`billing_accounts/{account_id}`: the account's billing, derived from its Stripe objects."""

    account_id: str
    customer_id: str | None = None
    customer_generation: int = 0
    customer_deleted: bool = False
    billing_contact: dict[str, Any] | None = None
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: str | None = None
    status: str = "none"
    subscription_id: str | None = None
    price_id: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    entitlements: list[str] = field(default_factory=list)
    erased: bool = False
    erased_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_doc(cls, account_id: str, data: Mapping[str, Any] | None) -> BillingState:
        known = set(cls.__dataclass_fields__) - {"account_id"}
        return cls(account_id=account_id, **{k: v for k, v in (data or {}).items() if k in known})

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_live_customer(self) -> bool:
        return bool(self.customer_id) and not self.customer_deleted

    def entitled_subscription(self, catalogue: Catalogue) -> dict[str, Any] | None:
        """The subscription that gives the account its plan: the best-ranked entitled one, newest first."""

        def order(sub: dict[str, Any]) -> tuple[int, datetime]:
            plan = catalogue.plan(sub.get("plan"))
            return (plan.rank if plan else -1, sub.get("created") or EPOCH)

        live = [
            s
            for s in self.subscriptions.values()
            if s.get("status") in ENTITLED_STATUSES and catalogue.plan(s.get("plan")) and not s.get("collection_paused")
        ]
        return max(live, key=order, default=None)

    def derive(self, catalogue: Catalogue) -> None:
        """Recompute plan, status and entitlements from every known subscription.

        The best entitled subscription wins, whatever order events came in: a cancellation of an old
        subscription never strips the entitlements of a newer active one.
        """
        best = self.entitled_subscription(catalogue)
        newest = max(self.subscriptions.values(), key=lambda s: s.get("created") or EPOCH, default=None)
        shown = best or newest
        plan = (catalogue.plan(best.get("plan")) if best else None) or catalogue.default
        self.plan = plan.id
        self.entitlements = list(plan.entitlements)
        self.status = str(shown.get("status")) if shown else "none"
        self.subscription_id = shown.get("id") if shown else None
        self.price_id = shown.get("price_id") if shown else None
        self.current_period_end = shown.get("current_period_end") if shown else None
        self.cancel_at_period_end = bool(shown.get("cancel_at_period_end")) if shown else False
        self._prune()

    def _prune(self) -> None:
        finished = sorted(
            (s for s in self.subscriptions.values() if s.get("status") in FINAL_STATUSES),
            key=lambda s: s.get("created") or EPOCH,
            reverse=True,
        )
        for old in finished[KEEP_FINISHED_SUBSCRIPTIONS:]:
            if old.get("id") != self.subscription_id:
                self.subscriptions.pop(str(old.get("id")), None)
