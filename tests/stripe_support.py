"""Helpers for the billing tests: signed Stripe events, localstripe set-up, and a fake of the two
Stripe APIs localstripe lacks (Checkout Sessions and Billing Portal sessions).

`StripeSessionsFake` is a tiny threaded HTTP server on a free port. It answers
`POST /v1/checkout/sessions` and `POST /v1/billing_portal/sessions` itself, recording the exact
parameters the stripe library sent (form-encoded, flattened: `line_items[0][price]`), and forwards
every other request to localstripe (`upstream`), so a customer created through it is a real
localstripe customer whose events arrive by webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import requests
import stripe

PLANS = {
    "price_pro_monthly": ("Pro", 2900, "month"),
    "price_pro_yearly": ("Pro", 29000, "year"),
    "price_enterprise_monthly": ("Enterprise", 99000, "month"),
    "price_enterprise_yearly": ("Enterprise", 990000, "year"),
}


# -- signed events ------------------------------------------------------------------------------


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(kind: str, obj: dict[str, Any], created: int | None = None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test_{secrets.token_hex(10)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "api_version": "2026-10-28.endive",
        "livemode": False,
        "data": {"object": obj},
    }


def deliver(
    base_url: str,
    evt: dict[str, Any],
    secret: str,
    *,
    timestamp: int | None = None,
    body: bytes | None = None,
    signature: str | None = None,
) -> requests.Response:
    """POST an event to the gateway's /stripe-webhook the way Stripe does."""
    payload = body if body is not None else json.dumps(evt).encode()
    header = signature if signature is not None else sign(payload, secret, timestamp)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    if header:
        headers["Stripe-Signature"] = header
    return requests.post(f"{base_url}/stripe-webhook", data=payload, headers=headers, timeout=30)


def webhook_secret(env: dict[str, str]) -> str:
    return env["STRIPE_WEBHOOK_SECRETS"].split(",")[0]


# -- localstripe ----------------------------------------------------------------------------------


def localstripe(env: dict[str, str]) -> stripe.StripeClient:
    return stripe.StripeClient(
        env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]}, max_network_retries=0
    )


_plans_lock = threading.Lock()


def ensure_plans(client: stripe.StripeClient) -> None:
    """The catalogue's price ids as localstripe Plans (localstripe has Plans, not Prices)."""
    with _plans_lock:
        existing = {plan.id for plan in client.v1.plans.list(params={"limit": 100}).data}
        for price_id, (name, amount, interval) in PLANS.items():
            if price_id in existing:
                continue
            product = client.v1.products.create(params={"name": name})
            try:
                client.v1.plans.create(
                    params={
                        "id": price_id,
                        "amount": amount,
                        "currency": "eur",
                        "interval": interval,
                        "product": product.id,
                    }
                )
            except stripe.InvalidRequestError as exc:  # created meanwhile (409)
                if exc.http_status != 409:
                    raise


def luhn_number(prefix: str = "4") -> str:
    """A random 16-digit card number that passes the Luhn check."""
    digits = [int(c) for c in prefix] + [random.randrange(10) for _ in range(15 - len(prefix))]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if i % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def add_card(client: stripe.StripeClient, customer_id: str, number: str = "4242424242424242") -> str:
    """Attach a card payment method to a localstripe customer and make it the default."""
    pm = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(pm.id, params={"customer": customer_id})
    client.v1.customers.update(customer_id, params={"invoice_settings": {"default_payment_method": pm.id}})
    return pm.id


def subscribe(client: stripe.StripeClient, customer_id: str, price: str, account_id: str) -> dict[str, Any]:
    """What a completed Checkout does: a subscription to `price` (a Plan id in localstripe)."""
    sub = client.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"plan": price}], "metadata": {"account_id": account_id}}
    )
    return sub.to_dict()


# -- the Checkout / Billing Portal fake -------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class StripeSessionsFake:
    upstream: str | None = None
    requests: list[Recorded] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> customer (no upstream)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> StripeSessionsFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                with fake._lock:
                    fake.requests.append(Recorded(self.command, path, params, dict(self.headers.items())))
                if not self.headers.get("Authorization", "").startswith("Bearer sk_"):
                    self._answer(401, b'{"error": {"message": "no key"}}')
                    return
                if self.command == "POST" and path == "/v1/checkout/sessions":
                    sid = f"cs_test_{secrets.token_hex(12)}"
                    body = {"id": sid, "object": "checkout.session", "url": f"https://checkout.stripe.com/c/pay/{sid}"}
                    self._answer(200, json.dumps(body).encode())
                    return
                if self.command == "POST" and path == "/v1/billing_portal/sessions":
                    sid = f"bps_{secrets.token_hex(12)}"
                    body = {
                        "id": sid,
                        "object": "billing_portal.session",
                        "url": f"https://billing.stripe.com/p/session/{sid}",
                    }
                    self._answer(200, json.dumps(body).encode())
                    return
                if fake.upstream is None:
                    if self.command == "POST" and path == "/v1/customers":
                        key = self.headers.get("Idempotency-Key", secrets.token_hex(8))
                        with fake._lock:
                            customer = fake.customers.setdefault(
                                key, {"id": f"cus_{secrets.token_hex(7)}", "object": "customer", "metadata": {}}
                            )
                        self._answer(200, json.dumps(customer).encode())
                        return
                    self._answer(404, b'{"error": {"message": "not in the fake"}}')
                    return
                forwarded = requests.request(
                    self.command,
                    fake.upstream + self.path,
                    data=raw,
                    headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")},
                    timeout=30,
                )
                self._answer(forwarded.status_code, forwarded.content)

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="stripe-sessions-fake", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, within a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        threading.Event().wait(interval)
