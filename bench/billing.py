"""Bench of the stripe-webhook function (issue: billing through Stripe).

1. Throughput: signed Stripe events handled per second by one instance (one process, 8 request
   threads as in terraform's `concurrency = 8`), against the Firestore emulator and localstripe.
   Each event is the whole webhook path: signature check, idempotency claim, customer lookup,
   re-read of the subscription from Stripe inside the Firestore transaction that writes it,
   completion. Baseline: the same number of bare idempotency claim + complete pairs, the least
   an exactly-once handler must do.
2. Where the time goes, handling the same events one at a time: the share spent outside Firestore
   calls and Stripe calls (signature, JSON, projections, plan derivation, our own code).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench.common import row

ACCOUNTS = 16
EVENTS = 240
THREADS = 8


class Timer:
    """Wall time spent inside wrapped calls, per category (summed over threads)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {"firestore": 0.0, "stripe": 0.0}
        self._lock = threading.Lock()

    def wrap(self, category: str, fn: Callable[..., Any], materialise: bool = False) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
                return iter(list(result)) if materialise else result
            finally:
                with self._lock:
                    self.spent[category] += time.perf_counter() - started

        return timed


@contextmanager
def instrumented(service: Any, timer: Timer) -> Iterator[None]:
    """Time every Firestore RPC of the service's client and every Stripe call of its adapter."""
    api = service.db._firestore_api
    names = {
        "commit": False,
        "begin_transaction": False,
        "rollback": False,
        "batch_get_documents": True,
        "run_query": True,
    }
    saved_api = {name: getattr(api, name) for name in names}
    for name, streaming in names.items():
        setattr(api, name, timer.wrap("firestore", saved_api[name], materialise=streaming))
    stripe_api = service.stripe
    saved_stripe = {name: getattr(stripe_api, name) for name in ("customer", "subscription", "invoice")}
    for name, fn in saved_stripe.items():
        setattr(stripe_api, name, timer.wrap("stripe", fn))
    try:
        yield
    finally:
        for name, fn in saved_api.items():
            setattr(api, name, fn)
        for name in saved_stripe:
            delattr(stripe_api, name)


def _setup(stack: Any) -> tuple[Any, list[dict[str, Any]], str]:
    from shared.bootstrap import build_billing_service
    from shared.config import Settings
    from shared.identity.model import ACCOUNTS as ACCOUNTS_COLLECTION
    from shared.identity.model import Account
    from tests.stripe_support import add_card, ensure_plans, localstripe, subscribe

    os.environ.update(stack.env)  # in-process clients reach the stack's emulators
    env = dict(os.environ)
    # This process is the one instance measured: localstripe's own deliveries to the gateway would
    # be a second writer on the same documents, so they go nowhere during the bench.
    stack.register_stripe_webhook("http://127.0.0.1:9")
    service = build_billing_service(Settings.from_env(env))
    ls = localstripe(env)
    ensure_plans(ls)
    subscriptions = []
    for n in range(ACCOUNTS):
        account = Account(
            id=f"bench_{secrets.token_hex(6)}",
            email=f"bench.{n}.{secrets.token_hex(3)}@example.com",
            first_name="Bench",
            last_name="Mark",
            created_at=datetime.now(UTC),
            email_verified=True,
        )
        service.db.collection(ACCOUNTS_COLLECTION).document(account.id).set(account.to_doc())
        customer = service._ensure_customer(account, service.state(account.id))
        add_card(ls, customer)
        subscriptions.append(subscribe(ls, customer, "price_pro_monthly", account.id))
    return service, subscriptions, env["STRIPE_WEBHOOK_SECRETS"].split(",")[0]


def _events(subscriptions: list[dict[str, Any]], count: int, secret: str) -> list[tuple[bytes, str]]:
    from tests.stripe_support import event, sign

    signed = []
    for n in range(count):
        payload = json.dumps(event("customer.subscription.updated", subscriptions[n % len(subscriptions)])).encode()
        signed.append((payload, sign(payload, secret)))
    return signed


def _rate(handle: Callable[[Any], Any], items: list[Any], threads: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(handle, items))
    return len(items) / (time.perf_counter() - started)


def run(stack: Any) -> list[str]:
    service, subscriptions, secret = _setup(stack)
    for payload, signature in _events(subscriptions, 8, secret):  # warm: imports, channels, pools
        service.handle_webhook(payload, signature)

    def handle(item: tuple[bytes, str]) -> None:
        assert service.handle_webhook(*item) == "processed"

    rate = _rate(handle, _events(subscriptions, EVENTS, secret), THREADS)

    def bare(key: str) -> None:
        claim = service.idempotency.claim(key, scope="bench")
        service.idempotency.complete(claim, {"outcome": "bench"})

    baseline = _rate(bare, [f"bench:{secrets.token_hex(8)}" for _ in range(EVENTS)], THREADS)

    timer = Timer()
    sequential = _events(subscriptions, EVENTS // 4, secret)
    with instrumented(service, timer):
        started = time.perf_counter()
        for item in sequential:
            handle(item)
        total = time.perf_counter() - started
    firestore_share = timer.spent["firestore"] / total
    stripe_share = timer.spent["stripe"] / total
    outside = max(0.0, 1 - firestore_share - stripe_share)
    return [
        f"stripe-webhook, one instance ({THREADS} threads), Firestore emulator + localstripe, {EVENTS} events:",
        row("events handled per second", f"{rate:.1f} /s", f"{baseline:.1f} /s", rate / baseline),
        "  (baseline: bare idempotency claim + complete pairs, the least an exactly-once handler does)",
        f"where the time goes, {len(sequential)} events one at a time ({total / len(sequential) * 1000:.1f} ms each):",
        f"  Firestore calls {firestore_share:6.1%}   Stripe calls {stripe_share:6.1%}   "
        f"outside both {outside:6.1%} (signature, JSON, projections, plan, our code)",
    ]
