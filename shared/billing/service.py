"""The billing service layer: checkout, portal, the account's plan, and the Stripe webhook (P9, P13, P17, P18).

Account side: Checkout and Billing Portal sessions are created server-side (P17); the Stripe
customer is created once per account (idempotency key from the account id, the account id in its
metadata); `view` gives the plan and the entitlements the catalogue derives from it (P9).

Webhook side, following Stripe's guidance and the failures most users of firestore-stripe-payments
and dj-stripe hit:

- exactly once: each event id is claimed in `idempotency_records` inside a transaction before any
  work (in progress / completed / failed, expiring); a duplicate is a no-op, a concurrent duplicate
  is told to come back later (409) and the work is done once;
- order-proof: subscription, customer and invoice state is never taken from the event payload; the
  object is re-read from the Stripe API inside the Firestore transaction that writes it, so a late,
  older event writes the newest state; the plan is derived from every subscription of the account,
  so cancelling an old subscription never strips the entitlements of a newer one;
- acknowledged only once stored: a transient failure (Stripe or Firestore unavailable) propagates
  (5xx, Stripe retries for three days) and is remembered for the reconcile command; an event for a
  customer we cannot tie to an account is parked (ids only), acknowledged and alerted on;
- allow-listed storage (P13): see shared/billing/model.py;
- receipts and payment notices are transactional mails (P18), each sent once per invoice (attempt).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore import contention, transact
from shared.adapters.mail import Mail, Mailer
from shared.adapters.stripe_api import StripeApi, StripeUnavailable
from shared.billing import mails
from shared.billing.model import (
    BILLING_ACCOUNTS,
    BILLING_CUSTOMERS,
    BILLING_EVENTS_PENDING,
    BILLING_INVOICES,
    FINAL_STATUSES,
    BillingState,
    EventRef,
    project_contact,
    project_invoice,
    project_subscription,
)
from shared.billing.plans import Catalogue
from shared.billing.webhook import verify_event
from shared.config import Settings
from shared.errors import Conflict, InvalidInput
from shared.idempotency import Claim, Completed, IdempotencyStore, InProgress
from shared.identity.model import Account
from shared.identity.stores import AccountStore
from shared.observability import get_logger

log = get_logger(__name__)

Clock = Callable[[], datetime]

CHECKOUT_COMPLETED = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
CHECKOUT_FAILED = "checkout.session.async_payment_failed"
SUBSCRIPTION_CHANGED = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)
TRIAL_WILL_END = "customer.subscription.trial_will_end"
# Stripe sends both for a paid invoice; localstripe only the second. The receipt goes out once.
INVOICE_PAID = frozenset({"invoice.paid", "invoice.payment_succeeded"})
INVOICE_FAILED = "invoice.payment_failed"
INVOICE_ACTION_REQUIRED = "invoice.payment_action_required"
CUSTOMER_CHANGED = frozenset({"customer.updated", "customer.deleted"})

HANDLED_EVENTS = frozenset(
    {
        *CHECKOUT_COMPLETED,
        CHECKOUT_FAILED,
        *SUBSCRIPTION_CHANGED,
        TRIAL_WILL_END,
        *INVOICE_PAID,
        INVOICE_FAILED,
        INVOICE_ACTION_REQUIRED,
        *CUSTOMER_CHANGED,
    }
)

# Failures worth a retry: the webhook answers 503 and Stripe tries again.
TRANSIENT: tuple[type[BaseException], ...] = (
    StripeUnavailable,
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Aborted,
    gexc.RetryError,
)

T = TypeVar("T")

EVENT_SCOPE = "stripe-event"
MAIL_SCOPE = "billing-mail"
# Stripe retries a delivery for three days; a redelivery after that is still recognised.
EVENT_RECORD_TTL = timedelta(days=30)
PENDING_RETENTION = timedelta(days=90)
PARKED, PROCESSED, DUPLICATE, IGNORED, ERASED = "parked", "processed", "duplicate", "ignored", "erased"


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_transient(exc: BaseException) -> bool:
    """A failure worth a retry: Stripe or Firestore unavailable, or a transaction that kept contending."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT) or contention(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


class UnknownCustomer(Exception):
    """The event's Stripe customer cannot be tied to an account (yet)."""


def event_key(event_id: str) -> str:
    return f"{EVENT_SCOPE}:{event_id}"


class BillingService:
    def __init__(
        self,
        db: firestore.Client,
        settings: Settings,
        stripe: StripeApi,
        mailer: Mailer,
        catalogue: Catalogue,
        idempotency: IdempotencyStore,
        accounts: AccountStore,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.accounts = accounts  # accounts are read through the identity store only
        self.settings = settings
        self.stripe = stripe
        self.mailer = mailer
        self.catalogue = catalogue
        self.idempotency = idempotency
        self.clock = clock
        self.sleep = sleep

    # -- documents ------------------------------------------------------------------------------
    def _transact(self, fn: Callable[[firestore.Transaction], T]) -> T:
        """Run `fn` in a Firestore transaction, retrying contention with jittered backoff."""
        return transact(self.db, fn, sleep=self.sleep)

    def _state_ref(self, account_id: str) -> firestore.DocumentReference:
        return self.db.collection(BILLING_ACCOUNTS).document(account_id)

    def _customer_ref(self, customer_id: str) -> firestore.DocumentReference:
        return self.db.collection(BILLING_CUSTOMERS).document(customer_id)

    def _pending_ref(self, event_id: str) -> firestore.DocumentReference:
        return self.db.collection(BILLING_EVENTS_PENDING).document(event_id)

    def state(self, account_id: str) -> BillingState:
        snap = self._state_ref(account_id).get()
        return BillingState.from_doc(account_id, snap.to_dict() if snap.exists else None)

    def _account(self, account_id: str) -> Account | None:
        if not account_id or "/" in account_id:
            return None
        return self.accounts.get(account_id)

    # -- account side (P9, P17) -----------------------------------------------------------------
    def view(self, account: Account) -> dict[str, Any]:
        state = self.state(account.id)
        plan = self.catalogue.plan(state.plan) or self.catalogue.default
        period_end = state.current_period_end
        return {
            "plan": plan.id,
            "plan_name": plan.name,
            "status": state.status,
            "current_period_end": period_end.isoformat() if period_end else None,
            "cancel_at_period_end": state.cancel_at_period_end,
            "billing_contact": state.billing_contact or account.billing_contact or {},
            "entitlements": list(plan.entitlements),
            "has_billing_account": state.has_live_customer,
        }

    def checkout(self, account: Account, price_id: str) -> str:
        """The URL of a Stripe Checkout Session for a subscription to `price_id` (a catalogue price)."""
        plan = self.catalogue.plan_for_price(price_id)
        if plan is None:
            raise InvalidInput(
                "unknown-price",
                "This price is not offered.",
                title="Unknown price",
                errors=[{"field": "price", "message": "not in the plan catalogue", "code": "unknown_price"}],
            )
        state = self.state(account.id)
        if state.entitled_subscription(self.catalogue) is not None:
            raise Conflict(
                "already-subscribed",
                "This account already has a subscription: change or cancel it in the billing portal.",
            )
        customer_id = self._ensure_customer(account, state)
        app = self.settings.app_url
        session = self.stripe.create_checkout_session(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": account.id,
                "line_items": [{"price": price_id, "quantity": 1}],
                "subscription_data": {"metadata": {"account_id": account.id}},
                "metadata": {"account_id": account.id},
                "customer_update": {"address": "auto", "name": "auto"},
                "success_url": f"{app}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
                "cancel_url": f"{app}/billing/canceled",
            }
        )
        log.info("checkout session created", account_id=account.id, plan=plan.id)
        return str(session["url"])

    def portal(self, account: Account) -> str:
        """The URL of a Billing Portal session for the account's Stripe customer."""
        state = self.state(account.id)
        if not state.has_live_customer:
            raise Conflict("no-billing-account", "There is no billing account to manage yet: subscribe first.")
        session = self.stripe.create_portal_session(
            {"customer": state.customer_id, "return_url": f"{self.settings.app_url}/billing"}
        )
        log.info("portal session created", account_id=account.id)
        return str(session["url"])

    def _ensure_customer(self, account: Account, state: BillingState) -> str:
        """The account's Stripe customer, created once (a concurrent request gets the same one)."""
        if state.has_live_customer:
            return str(state.customer_id)
        generation = state.customer_generation + (1 if state.customer_id else 0)
        customer = self.stripe.create_customer(
            email=account.email,
            name=f"{account.first_name} {account.last_name}".strip(),
            account_id=account.id,
            idempotency_key=f"wizyvision-customer-{account.id}-{generation}",
        )
        customer_id = str(customer["id"])
        ref = self._state_ref(account.id)
        now = self.clock()

        def link(tx: firestore.Transaction) -> str:
            snap = ref.get(transaction=tx)
            current = BillingState.from_doc(account.id, snap.to_dict() if snap.exists else None)
            if current.has_live_customer:
                return str(current.customer_id)
            current.customer_id = customer_id
            current.customer_generation = generation
            current.customer_deleted = False
            current.derive(self.catalogue)
            current.updated_at = now
            tx.set(ref, current.to_doc())
            tx.set(self._customer_ref(customer_id), {"account_id": account.id, "linked_at": now})
            return customer_id

        linked = self._transact(link)
        if linked != customer_id:
            log.warning("stripe customer created twice", account_id=account.id, kept=linked, extra=customer_id)
        return linked

    # -- webhook (P13) --------------------------------------------------------------------------
    def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify a delivery and handle its event; raises InvalidSignature, InProgress or a failure."""
        self.settings.require_keys("stripe_webhook_secrets")
        event = verify_event(
            payload,
            signature,
            self.settings.stripe_webhook_secrets,
            self.settings.stripe_webhook_tolerance_seconds,
        )
        return self.receive(EventRef.from_event(event))

    def receive(self, ref: EventRef) -> str:
        """Handle a verified event once: its outcome (processed, duplicate, ignored, parked, erased)."""
        fields = {"event_id": ref.id, "event_type": ref.type}
        if ref.type not in HANDLED_EVENTS:
            log.info("stripe event ignored", **fields)
            return IGNORED
        claim = self.idempotency.claim(event_key(ref.id), scope=EVENT_SCOPE, ttl=EVENT_RECORD_TTL)
        if isinstance(claim, Completed):
            log.info("stripe event duplicate", **fields)
            return DUPLICATE
        try:
            outcome = self._dispatch(ref)
        except UnknownCustomer:
            try:
                self._park(ref, "unknown-customer")
            except BaseException as exc:
                self._fail_quietly(claim, exc)
                raise
            self.idempotency.complete(claim, {"outcome": PARKED}, ttl=EVENT_RECORD_TTL)
            log.alert(
                "stripe event parked: its customer is tied to no account",
                alert_name="billing-event-parked",
                customer_id=ref.customer_id,
                **fields,
            )
            return PARKED
        except InProgress:
            with contextlib.suppress(Exception):
                self.idempotency.release(claim)
            raise
        except BaseException as exc:
            self._fail_quietly(claim, exc)
            with contextlib.suppress(Exception):
                self._park(ref, "failed", type(exc).__name__)
            log.alert(
                "stripe event failed",
                alert_name="billing-event-failed",
                error=type(exc).__name__,
                transient=is_transient(exc),
                **fields,
            )
            raise
        self.idempotency.complete(claim, {"outcome": outcome}, ttl=EVENT_RECORD_TTL)
        if claim.attempt > 1:
            with contextlib.suppress(Exception):
                self._pending_ref(ref.id).delete()
        log.info("stripe event handled", outcome=outcome, **fields)
        return outcome

    def _fail_quietly(self, claim: Claim, exc: BaseException) -> None:
        try:
            self.idempotency.fail(claim, type(exc).__name__)
        except Exception:  # Firestore is down too: the lease runs out and the redelivery claims again
            log.warning("idempotency record not marked failed", event_error=type(exc).__name__)

    def _dispatch(self, ref: EventRef) -> str:
        if ref.type in CHECKOUT_COMPLETED:
            return self._on_checkout(ref)
        if ref.type == CHECKOUT_FAILED:
            return self._on_checkout_failed(ref)
        if ref.type in SUBSCRIPTION_CHANGED:
            return self._on_subscription(ref)
        if ref.type == TRIAL_WILL_END:
            return self._on_trial_will_end(ref)
        if ref.type in INVOICE_PAID or ref.type in (INVOICE_FAILED, INVOICE_ACTION_REQUIRED):
            return self._on_invoice(ref)
        if ref.type in CUSTOMER_CHANGED:
            return self._on_customer(ref)
        return IGNORED

    # -- handlers -----------------------------------------------------------------------------------
    def _on_checkout(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        if ref.subscription_id:
            self._sync_subscription(account_id, ref.subscription_id)
        self._sync_customer(account_id, str(ref.customer_id))
        return PROCESSED

    def _on_checkout_failed(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        if ref.subscription_id:
            self._sync_subscription(account_id, ref.subscription_id)
        self._mail_once(
            f"checkout-failed:{ref.object_id}",
            account_id,
            lambda to, name: mails.checkout_payment_failed(to, name, self.settings.app_url),
        )
        return PROCESSED

    def _on_subscription(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        self._sync_subscription(account_id, str(ref.subscription_id or ref.object_id))
        return PROCESSED

    def _on_trial_will_end(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        sub = self._sync_subscription(account_id, str(ref.subscription_id or ref.object_id))
        if sub and sub.get("status") == "trialing" and sub.get("trial_end"):
            plan = self.catalogue.plan(sub.get("plan")) or self.catalogue.default
            trial_end = sub["trial_end"]
            self._mail_once(
                f"trial-ending:{sub['id']}:{int(trial_end.timestamp())}",
                account_id,
                lambda to, name: mails.trial_ending(to, name, plan.name, trial_end, self.settings.app_url),
            )
        return PROCESSED

    def _on_customer(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        self._sync_customer(account_id, str(ref.customer_id))
        return PROCESSED

    def _on_invoice(self, ref: EventRef) -> str:
        account_id = self._account_of(ref.customer_id, ref.account_hint)
        if account_id is None:
            return ERASED
        invoice = self._sync_invoice(account_id, str(ref.object_id))
        if invoice is None:
            return PROCESSED
        sub = self._sync_subscription(account_id, invoice["subscription_id"]) if invoice["subscription_id"] else None
        invoice_id, status, attempt = invoice["id"], invoice["status"], invoice["attempt_count"]
        if ref.type in INVOICE_PAID and status == "paid":
            plan_id = (sub or {}).get("plan") or self.state(account_id).plan
            plan = self.catalogue.plan(plan_id) or self.catalogue.default
            self._mail_once(
                f"receipt:{invoice_id}", account_id, lambda to, name: mails.receipt(to, name, plan.name, invoice)
            )
        elif ref.type == INVOICE_FAILED and status != "paid":
            self._mail_once(
                f"payment-failed:{invoice_id}:{attempt}",
                account_id,
                lambda to, name: mails.payment_failed(to, name, self.settings.app_url, invoice),
            )
        elif ref.type == INVOICE_ACTION_REQUIRED and status != "paid":
            self._mail_once(
                f"action-required:{invoice_id}:{attempt}",
                account_id,
                lambda to, name: mails.action_required(to, name, invoice),
            )
        return PROCESSED

    # -- state, re-read from Stripe inside the transaction that writes it ----------------------------
    def _account_of(self, customer_id: str | None, hint: str | None) -> str | None:
        """The account of a Stripe customer; None once that account (or its billing) was erased.

        Not linked yet: the account id we put in the customer's metadata at creation, else the one
        the event carries (a Checkout Session's client_reference_id, a subscription's metadata),
        provided that account exists. Otherwise UnknownCustomer: the event is parked.
        """
        if not customer_id:
            raise UnknownCustomer(None)
        snap = self._customer_ref(customer_id).get()
        if snap.exists:
            data = snap.to_dict() or {}
            account_id = str(data["account_id"])
            # An erased account (P11) is never brought back by a late event.
            return None if data.get("erased") or self._account(account_id) is None else account_id
        customer = self.stripe.customer(customer_id)
        metadata = (customer or {}).get("metadata") or {}
        for candidate in (metadata.get("account_id"), hint):
            if isinstance(candidate, str) and candidate and self._account(candidate) is not None:
                return candidate if self._link(candidate, customer_id) else None
        raise UnknownCustomer(customer_id)

    def _link(self, account_id: str, customer_id: str) -> bool:
        """Tie a Stripe customer to an account; False when that account's billing was erased."""
        ref = self._state_ref(account_id)
        now = self.clock()

        def link(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            state = BillingState.from_doc(account_id, snap.to_dict() if snap.exists else None)
            if state.erased:
                return False
            if not state.has_live_customer:
                state.customer_id = customer_id
                state.customer_deleted = False
            state.derive(self.catalogue)
            state.updated_at = now
            tx.set(ref, state.to_doc())
            tx.set(self._customer_ref(customer_id), {"account_id": account_id, "linked_at": now})
            return True

        linked = self._transact(link)
        if linked:
            log.info("stripe customer linked", account_id=account_id, customer_id=customer_id)
        return linked

    def _sync_subscription(self, account_id: str, subscription_id: str) -> dict[str, Any] | None:
        """Store the subscription as Stripe has it now; re-derive the account's plan."""
        ref = self._state_ref(account_id)

        def write(tx: firestore.Transaction) -> dict[str, Any] | None:
            snap = ref.get(transaction=tx)
            state = BillingState.from_doc(account_id, snap.to_dict() if snap.exists else None)
            if state.erased:
                return None
            obj = self.stripe.subscription(subscription_id)
            now = self.clock()
            if obj is None:
                known = state.subscriptions.get(subscription_id)
                if known is None:
                    return None
                sub = {**known, "status": "canceled", "ended_at": known.get("ended_at") or now}
            else:
                sub = project_subscription(obj, self.catalogue)
                if sub["plan"] is None:
                    log.warning(
                        "subscription price not in the plan catalogue: no entitlements",
                        subscription_id=subscription_id,
                        price_id=sub["price_id"],
                    )
            state.subscriptions[subscription_id] = sub
            state.customer_id = state.customer_id or sub.get("customer_id")
            state.derive(self.catalogue)
            state.updated_at = now
            tx.set(ref, state.to_doc())
            return sub

        return self._transact(write)

    def _sync_customer(self, account_id: str, customer_id: str) -> None:
        """Store the customer's billing contact as Stripe has it now, or its deletion."""
        ref = self._state_ref(account_id)

        def write(tx: firestore.Transaction) -> None:
            snap = ref.get(transaction=tx)
            state = BillingState.from_doc(account_id, snap.to_dict() if snap.exists else None)
            if state.erased:
                return
            obj = self.stripe.customer(customer_id)
            now = self.clock()
            if obj is None:
                self._customer_gone(state, customer_id, now)
            elif state.customer_id in (None, customer_id) or state.customer_deleted:
                state.customer_id = customer_id
                state.customer_deleted = False
                state.billing_contact = project_contact(obj)
            state.derive(self.catalogue)
            state.updated_at = now
            tx.set(ref, state.to_doc())

        self._transact(write)

    @staticmethod
    def _customer_gone(state: BillingState, customer_id: str, now: datetime) -> None:
        """Stripe deleted the customer, which cancels its subscriptions at once."""
        for sub in state.subscriptions.values():
            if sub.get("customer_id") == customer_id and sub.get("status") not in FINAL_STATUSES:
                sub["status"] = "canceled"
                sub["ended_at"] = sub.get("ended_at") or now
        if state.customer_id == customer_id:
            state.customer_deleted = True
            state.billing_contact = None

    def _sync_invoice(self, account_id: str, invoice_id: str) -> dict[str, Any] | None:
        ref = self.db.collection(BILLING_INVOICES).document(invoice_id)

        def write(tx: firestore.Transaction) -> dict[str, Any] | None:
            ref.get(transaction=tx)
            obj = self.stripe.invoice(invoice_id)
            if obj is None:
                return None
            invoice = project_invoice(obj)
            tx.set(ref, {**invoice, "account_id": account_id, "synced_at": self.clock()})
            return invoice

        return self._transact(write)

    # -- mail, once per key -----------------------------------------------------------------------
    def _mail_once(self, key: str, account_id: str, build: Callable[[str, str], Mail]) -> None:
        account = self._account(account_id)
        if account is None:
            return
        to = (account.billing_contact or {}).get("email") or account.email

        def send() -> dict[str, Any]:
            self.mailer.send(build(to, account.first_name))
            return {"sent": True}

        self.idempotency.run(f"{MAIL_SCOPE}:{key}", send, scope=MAIL_SCOPE)

    # -- parked and failed events ---------------------------------------------------------------
    def _park(self, ref: EventRef, reason: str, error: str | None = None) -> None:
        now = self.clock()
        self._pending_ref(ref.id).set(
            {
                **ref.to_doc(),
                "reason": reason,
                "error": error,
                "attempts": firestore.Increment(1),
                "updated_at": now,
                "expire_at": now + PENDING_RETENTION,
            },
            merge=True,
        )

    def pending(self, limit: int = 500) -> list[dict[str, Any]]:
        """Parked and failed events, oldest first (ids only)."""
        query = self.db.collection(BILLING_EVENTS_PENDING).order_by("updated_at").limit(limit)
        return [snap.to_dict() or {} for snap in query.stream()]

    def reconcile(self, limit: int = 500) -> dict[str, int]:
        """Replay every parked and failed event: counts of replayed, still-parked, failed, in-progress."""
        counts: Counter[str] = Counter()
        for data in self.pending(limit):
            counts[self._replay(EventRef.from_doc(data))] += 1
        log.info("billing reconcile", **dict(counts))
        return dict(counts)

    def _replay(self, ref: EventRef) -> str:
        fields = {"event_id": ref.id, "event_type": ref.type}
        try:
            claimed = self.idempotency.claim(event_key(ref.id), scope=EVENT_SCOPE, ttl=EVENT_RECORD_TTL)
        except InProgress:
            return "in-progress"
        claim = claimed if isinstance(claimed, Claim) else None  # a parked event's record is completed
        try:
            outcome = self._dispatch(ref)
        except UnknownCustomer:
            if claim:
                self.idempotency.complete(claim, {"outcome": PARKED}, ttl=EVENT_RECORD_TTL)
            self._park(ref, "unknown-customer")
            log.alert("stripe event still parked", alert_name="billing-event-parked", **fields)
            return "still-parked"
        except InProgress:
            if claim:
                self.idempotency.release(claim)
            return "in-progress"
        except Exception as exc:
            if claim:
                self._fail_quietly(claim, exc)
            self._park(ref, "failed", type(exc).__name__)
            log.alert(
                "stripe event replay failed", alert_name="billing-event-failed", error=type(exc).__name__, **fields
            )
            return "failed"
        if claim:
            self.idempotency.complete(claim, {"outcome": outcome, "replayed": True}, ttl=EVENT_RECORD_TTL)
        self._pending_ref(ref.id).delete()
        log.info("stripe event replayed", outcome=outcome, **fields)
        return "replayed"

    # -- account cancellation (P19) --------------------------------------------------------------
    def end_subscriptions_at_period_end(self, account_id: str) -> list[dict[str, Any]]:
        """Set every live subscription of the account to end at its period's end (no renewal, no refund).

        Each is updated at Stripe (`cancel_at_period_end`), then re-read and stored on the billing
        account, which then shows `cancel_at_period_end`. Idempotent: one already set is left as it
        is. Returns the subscriptions concerned as stored ({id, plan, current_period_end, ...}).
        """
        state = self.state(account_id)
        if state.erased:
            return []
        ended: list[dict[str, Any]] = []
        for subscription_id, sub in sorted(state.subscriptions.items()):
            if sub.get("status") in FINAL_STATUSES:
                continue
            if not sub.get("cancel_at_period_end"):
                self.stripe.end_subscription_at_period_end(subscription_id)
            synced = self._sync_subscription(account_id, subscription_id) or sub
            if synced.get("status") not in FINAL_STATUSES:
                ended.append({**synced, "id": subscription_id})
        if ended:
            log.info("subscriptions end at period end", account_id=account_id, subscriptions=len(ended))
        return ended

    # -- erasure (P11) --------------------------------------------------------------------------
    def erase_account(self, account_id: str) -> dict[str, int]:
        """Delete the account's Stripe customers (Stripe cancels their subscriptions) and mark billing erased.

        Resumable: a customer Stripe no longer has (404) counts as deleted; a transient failure
        propagates and the step can be run again. What stays is a marker without personal data, so
        late Stripe events for these customers are acknowledged and change nothing.
        """
        state = self.state(account_id)
        linked = self.db.collection(BILLING_CUSTOMERS).where(filter=FieldFilter("account_id", "==", account_id))
        customer_ids = sorted({snap.id for snap in linked.stream()} | ({state.customer_id} - {None}))  # type: ignore[operator]
        deleted = sum(1 for customer_id in customer_ids if self.stripe.delete_customer(customer_id))
        now = self.clock()
        batch = self.db.batch()
        erased = BillingState(account_id=account_id, status="erased", erased=True, erased_at=now, updated_at=now)
        batch.set(self._state_ref(account_id), erased.to_doc())
        for customer_id in customer_ids:
            batch.set(self._customer_ref(customer_id), {"account_id": account_id, "erased": True, "erased_at": now})
        batch.commit()
        invoices = self.db.collection(BILLING_INVOICES).where(filter=FieldFilter("account_id", "==", account_id))
        for snap in invoices.stream():
            snap.reference.delete()
        for customer_id in customer_ids:
            parked = self.db.collection(BILLING_EVENTS_PENDING).where(
                filter=FieldFilter("customer_id", "==", customer_id)
            )
            for snap in parked.stream():
                snap.reference.delete()
        log.info("billing erased", account_id=account_id, customers=len(customer_ids), deleted=deleted)
        return {"customers": len(customer_ids), "deleted": deleted}
