"""Local HTTP fakes of the processors' APIs (Zendesk, Intercom, HubSpot, and a small Stripe).

Each fake is a threaded `http.server` on a free loopback port that records every request
(method, path, query, headers, parsed body) and answers from a small in-memory model of the
processor, so an adapter's calls can be checked exactly. `fail(method, path, status, ...)` makes
the next matching request(s) answer an error instead (404, 429 with Retry-After, 500...).

    with ZendeskFake() as zendesk:
        zendesk.add_user(email="ada@example.com")
        settings = processor_settings(ZENDESK_API_BASE=zendesk.url, ...)
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shared.config import Settings

Answer = tuple[int, Any, dict[str, str]]

ZENDESK_EMAIL = "agent@wizyvision.example"
ZENDESK_TOKEN = "zendesk-test-token"
INTERCOM_TOKEN = "intercom-test-token"
HUBSPOT_TOKEN = "hubspot-test-token"
STRIPE_KEY = "sk_test_fake"


def processor_settings(**env: str) -> Settings:
    """Local-mode settings for the processor adapters (only processor variables matter)."""
    base = {"GOOGLE_CLOUD_PROJECT": "demo-processors", "APP_ENV": "local"}
    return Settings.from_env({**base, **env})


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.raw.decode())


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class FakeApi:
    """The server part: recording, injected failures, routing to `handle` (overridden by each fake)."""

    requests: list[Recorded] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else None
                except ValueError:
                    body = None
                parts = urlsplit(self.path)
                recorded = Recorded(
                    self.command,
                    unquote(parts.path),
                    parse_qs(parts.query),
                    dict(self.headers.items()),
                    body,
                    raw,
                )
                status, payload, headers = fake._answer(recorded)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests matching `method` and the regex `path` (full match) answer `status`."""
        with self._lock:
            self._failures.append(_Failure(method, re.compile(path), status, body, headers or {}, times))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded requests, optionally only those matching `method` and the regex `path`."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or re.fullmatch(path, r.path))
            ]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()

    def _answer(self, req: Recorded) -> Answer:
        with self._lock:
            self.requests.append(req)
            for failure in self._failures:
                if failure.times > 0 and failure.method == req.method and failure.path.fullmatch(req.path):
                    failure.times -= 1
                    return failure.status, failure.body, failure.headers
        try:
            return self.handle(req)
        except Exception as exc:  # a bug in the fake must show, not hang the adapter
            return 599, {"fake_error": repr(exc)}, {}

    def handle(self, req: Recorded) -> Answer:
        return 404, {"error": "NoRoute"}, {}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- Zendesk --------------------------------------------------------------------------------------


@dataclass
class ZendeskFake(FakeApi):
    """Users (active and soft-deleted), requested tickets and comments; API token auth."""

    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    purged: set[int] = field(default_factory=set)
    tickets: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    page_size_cap: int = 100
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    AUTH = _basic(f"{ZENDESK_EMAIL}/token", ZENDESK_TOKEN)

    def add_user(self, email: str, external_id: str | None = None, tickets: int = 0) -> int:
        user_id = next(self._ids)
        self.users[user_id] = {
            "id": user_id,
            "name": "Ada Lovelace",
            "email": email,
            "external_id": external_id,
            "role": "end-user",
            "phone": None,
            "created_at": "2026-01-01T00:00:00Z",
            "active": True,
            "photo": {"content_url": "https://example.invalid/photo.png"},  # not in the export allow-list
        }
        for _ in range(tickets):
            ticket_id = next(self._ids)
            self.tickets.setdefault(user_id, []).append(
                {"id": ticket_id, "subject": "Help", "description": "It broke", "status": "open", "via": {"x": 1}}
            )
            self.comments[ticket_id] = [{"id": next(self._ids), "author_id": user_id, "plain_body": "It broke"}]
        return user_id

    def add_deleted_filler(self, count: int) -> None:
        """Soft-deleted users of other people (so the deleted-users scan pages)."""
        for n in range(count):
            user_id = next(self._ids)
            self.deleted[user_id] = {"id": user_id, "email": f"someone-{n}@example.org", "active": False}

    def _page(self, items: list[dict[str, Any]], req: Recorded, key: str) -> Answer:
        size = min(int(req.query.get("page[size]", ["100"])[0]), self.page_size_cap)
        after = req.query.get("page[after]", [None])[0]
        start = int(after) if after else 0
        chunk = items[start : start + size]
        more = start + size < len(items)
        meta = {"has_more": more, "after_cursor": str(start + size) if more else None}
        return 200, {key: chunk, "meta": meta}, {}

    def handle(self, req: Recorded) -> Answer:
        if req.header("Authorization") != self.AUTH:
            return 401, {"error": "Couldn't authenticate you"}, {}
        path = req.path
        if req.method == "GET" and path == "/api/v2/users/search.json":
            if "external_id" in req.query:
                wanted = req.query["external_id"][0]
                found = [u for u in self.users.values() if u.get("external_id") == wanted]
            else:
                query = req.query.get("query", [""])[0]
                email = query.removeprefix("email:").lower()
                found = [u for u in self.users.values() if str(u.get("email")).lower() == email]
            return 200, {"users": found, "next_page": None, "count": len(found)}, {}
        if m := re.fullmatch(r"/api/v2/users/(\d+)", path):
            user_id = int(m.group(1))
            if req.method == "DELETE":
                user = self.users.pop(user_id, None)
                if user is None:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                self.deleted[user_id] = {**user, "active": False}
                return 200, {"user": {**user, "active": False}}, {}
        if req.method == "GET" and path == "/api/v2/deleted_users.json":
            return self._page(list(self.deleted.values()), req, "deleted_users")
        if m := re.fullmatch(r"/api/v2/deleted_users/(\d+)", path):
            user_id = int(m.group(1))
            if req.method == "DELETE":
                if user_id not in self.deleted:
                    return 404, {"error": "RecordNotFound", "description": "Not found"}, {}
                user = self.deleted.pop(user_id)
                self.purged.add(user_id)
                self.tickets.pop(user_id, None)
                return 200, {"deleted_user": {**user, "email": None, "name": "Permanently Deleted User"}}, {}
        if m := re.fullmatch(r"/api/v2/users/(\d+)/tickets/requested\.json", path):
            return self._page(self.tickets.get(int(m.group(1)), []), req, "tickets")
        if m := re.fullmatch(r"/api/v2/tickets/(\d+)/comments\.json", path):
            return self._page(self.comments.get(int(m.group(1)), []), req, "comments")
        return 404, {"error": "InvalidEndpoint"}, {}

    def holds(self, email: str) -> bool:
        """Whether any trace of the address is left (active or soft-deleted)."""
        every = [*self.users.values(), *self.deleted.values()]
        return any(str(u.get("email")).lower() == email.lower() for u in every)


# --- Intercom -------------------------------------------------------------------------------------


@dataclass
class IntercomFake(FakeApi):
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_page_cap: int = 50
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add_contact(self, email: str, external_id: str | None = None, role: str = "user") -> str:
        contact_id = f"6{next(self._ids):023x}"
        self.contacts[contact_id] = {
            "type": "contact",
            "id": contact_id,
            "role": role,
            "email": email,
            "external_id": external_id,
            "name": "Ada Lovelace",
            "location": {"type": "location", "country": "France", "region": "IDF", "city": "Paris"},
            "avatar": "https://example.invalid/a.png",  # not in the export allow-list
            "created_at": 1767225600,
        }
        return contact_id

    def _matches(self, contact: dict[str, Any], clause: dict[str, Any]) -> bool:
        if clause.get("operator") in ("OR", "AND"):
            results = [self._matches(contact, c) for c in clause.get("value") or []]
            return any(results) if clause["operator"] == "OR" else all(results)
        if clause.get("operator") != "=":
            raise ValueError(f"unsupported operator {clause.get('operator')}")
        return contact.get(clause["field"]) == clause.get("value")

    def handle(self, req: Recorded) -> Answer:
        if req.header("Authorization") != f"Bearer {INTERCOM_TOKEN}":
            return 401, {"type": "error.list", "errors": [{"code": "unauthorized"}]}, {}
        if req.method == "POST" and req.path == "/contacts/search":
            matched = [c for c in self.contacts.values() if self._matches(c, req.body["query"])]
            pagination = req.body.get("pagination") or {}
            size = min(int(pagination.get("per_page", 50)), self.per_page_cap)
            start = int(pagination.get("starting_after") or 0)
            chunk = matched[start : start + size]
            pages: dict[str, Any] = {"type": "pages", "per_page": size}
            if start + size < len(matched):
                pages["next"] = {"per_page": size, "starting_after": str(start + size)}
            return 200, {"type": "list", "data": chunk, "total_count": len(matched), "pages": pages}, {}
        if (m := re.fullmatch(r"/contacts/([0-9a-f]+)", req.path)) and req.method == "PUT":
            contact = self.contacts.get(m.group(1))
            if contact is None:
                return 404, {"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]}, {}
            if not isinstance(req.body, dict):
                return 400, {"type": "error.list", "errors": [{"code": "parameter_invalid"}]}, {}
            if "unsubscribed_from_emails" in req.body and not isinstance(req.body["unsubscribed_from_emails"], bool):
                return 400, {"type": "error.list", "errors": [{"code": "parameter_invalid"}]}, {}
            contact.update({k: v for k, v in req.body.items() if k in ("unsubscribed_from_emails", "name", "email")})
            return 200, contact, {}
        if (m := re.fullmatch(r"/contacts/([0-9a-f]+)", req.path)) and req.method == "DELETE":
            if self.contacts.pop(m.group(1), None) is None:
                return (
                    404,
                    {"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]},
                    {},
                )
            return 200, {"id": m.group(1), "object": "contact", "deleted": True}, {}
        return 404, {"type": "error.list", "errors": [{"code": "not_found"}]}, {}


# --- HubSpot --------------------------------------------------------------------------------------


# HubSpot's legal bases of a subscription (communication preferences v3).
HUBSPOT_LEGAL_BASES = {
    "LEGITIMATE_INTEREST_PQL",
    "LEGITIMATE_INTEREST_CLIENT",
    "PERFORMANCE_OF_CONTRACT",
    "CONSENT_WITH_NOTICE",
    "NON_GDPR",
    "PROCESS_AND_STORE",
    "LEGITIMATE_INTEREST_OTHER",
}


@dataclass
class HubSpotFake(FakeApi):
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Communication preferences (v3): subscription type ids each address is subscribed to.
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(501))

    def add_contact(self, email: str) -> str:
        contact_id = str(next(self._ids))
        self.contacts[email.lower()] = {
            "id": contact_id,
            "properties": {
                "email": email,
                "firstname": "Ada",
                "lastname": "Lovelace",
                "hs_object_id": contact_id,
                "hs_email_optout": "false",
            },
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-02T00:00:00Z",
            "archived": False,
        }
        return contact_id

    def _preference(self, req: Recorded, *, subscribe: bool) -> Answer:
        """Like HubSpot: a 400 "already subscribed/unsubscribed" when the address is already in that state."""
        body = req.body if isinstance(req.body, dict) else {}
        email, subscription = str(body.get("emailAddress") or "").lower(), str(body.get("subscriptionId") or "")
        invalid = 400, {"status": "error", "category": "VALIDATION_ERROR", "message": "invalid input"}, {}
        if not email or not subscription:
            return invalid
        if subscribe and body.get("legalBasis") is not None and body["legalBasis"] not in HUBSPOT_LEGAL_BASES:
            return invalid
        held = self.subscriptions.setdefault(email, set())
        if (subscription in held) == subscribe:
            state = "subscribed" if subscribe else "unsubscribed"
            message = f"{email} is already {state} to subscription {subscription}"
            return 400, {"status": "error", "category": "VALIDATION_ERROR", "message": message}, {}
        (held.add if subscribe else held.discard)(subscription)
        status = "SUBSCRIBED" if subscribe else "NOT_SUBSCRIBED"
        return (
            200,
            {"id": subscription, "name": "Marketing", "status": status, "sourceOfStatus": "SUBSCRIPTION_STATUS"},
            {},
        )

    def handle(self, req: Recorded) -> Answer:
        if req.header("Authorization") != f"Bearer {HUBSPOT_TOKEN}":
            return 401, {"status": "error", "category": "INVALID_AUTHENTICATION"}, {}
        not_found = 404, {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "resource not found"}, {}
        if req.method == "POST" and req.path == "/crm/v3/objects/contacts/gdpr-delete":
            if req.body.get("idProperty") != "email":
                return 400, {"status": "error", "category": "VALIDATION_ERROR"}, {}
            if self.contacts.pop(str(req.body.get("objectId")).lower(), None) is None:
                return not_found
            return 204, None, {}
        if req.method == "POST" and req.path in (
            "/communication-preferences/v3/subscribe",
            "/communication-preferences/v3/unsubscribe",
        ):
            return self._preference(req, subscribe=req.path.endswith("/subscribe"))
        if req.method == "GET" and (m := re.fullmatch(r"/crm/v3/objects/contacts/(.+)", req.path)):
            if req.query.get("idProperty") != ["email"]:
                return 400, {"status": "error", "category": "VALIDATION_ERROR"}, {}
            contact = self.contacts.get(m.group(1).lower())
            if contact is None:
                return not_found
            wanted = req.query.get("properties", [""])[0].split(",")
            props = {k: v for k, v in contact["properties"].items() if k in wanted}
            return 200, {**contact, "properties": props}, {}
        return not_found


# --- Stripe (when the stack has no localstripe) -------------------------------------------------


@dataclass
class StripeFake(FakeApi):
    """Customers, subscriptions and invoices, form-encoded like Stripe; holds card data to prove it stays out."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add_customer(self, email: str, account_id: str) -> str:
        cid = f"cus_fake{next(self._ids)}"
        self.customers[cid] = {
            "id": cid,
            "object": "customer",
            "email": email,
            "name": "Ada Lovelace",
            "metadata": {"account_id": account_id},
            "address": {"line1": "1 rue X", "city": "Paris", "country": "FR", "postal_code": "75009"},
            "default_source": "card_123",
            "sources": {"data": [{"id": "card_123", "last4": "4242", "exp_month": 12}]},
            "invoice_settings": {"default_payment_method": "pm_123"},
            "created": 1767225600,
        }
        self.subscriptions.append(
            {
                "id": f"sub_fake{next(self._ids)}",
                "object": "subscription",
                "customer": cid,
                "status": "active",
                "default_payment_method": {"id": "pm_123", "card": {"last4": "4242"}},
                "items": {"data": [{"id": "si_1", "price": {"id": "price_pro", "recurring": {"interval": "month"}}}]},
            }
        )
        self.invoices.append(
            {
                "id": f"in_fake{next(self._ids)}",
                "object": "invoice",
                "customer": cid,
                "status": "paid",
                "total": 1900,
                "currency": "eur",
                "charge": {"payment_method_details": {"card": {"last4": "4242"}}},
            }
        )
        return cid

    def _list(self, items: list[dict[str, Any]], url: str) -> dict[str, Any]:
        return {"object": "list", "data": items, "has_more": False, "url": url}

    def handle(self, req: Recorded) -> Answer:
        if req.header("Authorization") != f"Bearer {STRIPE_KEY}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}, {}
        missing = 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}, {}
        q = {k: v[0] for k, v in req.query.items()}
        if req.path == "/v1/customers" and req.method == "GET":
            found = [c for c in self.customers.values() if c["email"] == q.get("email")]
            return 200, self._list(found, "/v1/customers"), {}
        if m := re.fullmatch(r"/v1/customers/(\w+)", req.path):
            cid = m.group(1)
            if cid not in self.customers:
                return missing
            if req.method == "DELETE":
                del self.customers[cid]
                return 200, {"id": cid, "object": "customer", "deleted": True}, {}
            return 200, self.customers[cid], {}
        if req.path == "/v1/subscriptions":
            found = [s for s in self.subscriptions if s["customer"] == q.get("customer")]
            return 200, self._list(found, "/v1/subscriptions"), {}
        if req.path == "/v1/invoices":
            found = [i for i in self.invoices if i["customer"] == q.get("customer")]
            return 200, self._list(found, "/v1/invoices"), {}
        return missing
