"""Helpers for tests that act as a user would: an HTTP client on the gateway, the mailbox, secrets.

Every password and session token a test uses goes through `new_password()` / the client, so the
after-suite leak scan (tests/e2e/test_zz_no_secret_leaks.py) knows exactly what must never appear
in Firestore, a log line, an error body or a mail (P1).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import requests

from devstack.mail import MailSink, message_text

PASSWORDS_USED: set[str] = set()
SESSION_TOKENS_SEEN: set[str] = set()
RESPONSE_BODIES: list[str] = []


def new_password(prefix: str = "") -> str:
    """A password that passes the policy and is unique to the test (recorded for the leak scan)."""
    value = f"{prefix}Tr0ub4dor&{secrets.token_urlsafe(9)}"
    PASSWORDS_USED.add(value)
    return value


def remember_password(value: str) -> str:
    PASSWORDS_USED.add(value)
    return value


def new_email(tag: str = "user") -> str:
    return f"{tag}.{secrets.token_hex(5)}@example.com"


def new_ip() -> str:
    """A distinct client address per test, so per-IP throttling never couples two tests."""
    return f"203.0.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@dataclass
class Client:
    """A browser-like client of the gateway: one IP and one user agent, optionally a session."""

    base_url: str
    ip: str = field(default_factory=new_ip)
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
    token: str | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-Forwarded-For": self.ip, "User-Agent": self.user_agent, **kwargs.pop("headers", {})}
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        response = requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)
        RESPONSE_BODIES.append(response.text)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            token = response.json().get("session_token") if isinstance(response.json(), dict) else None
            if token:
                SESSION_TOKENS_SEEN.add(token)
        return response

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def clone(self, **changes: Any) -> Client:
        return Client(**{**self.__dict__, **changes})


# Mail links carry their single-use token in the URL fragment (`…#token=…`), never in a query string.
LINK = re.compile(r"https?://\S+?#token=([A-Za-z0-9_\-%]+)")


def link_token(message: EmailMessage) -> str:
    """The token of the first link of the mail (read from the link's `#token=` fragment)."""
    found = LINK.search(message_text(message))
    assert found, f"no #token= link in {message['Subject']!r}"
    return unquote(found.group(1))


def link_url(message: EmailMessage) -> str:
    """The first link of the mail that carries a token, as a browser would open it (fragment included)."""
    found = re.search(r"https?://\S+?#token=[A-Za-z0-9_\-%]+", message_text(message))
    assert found, f"no #token= link in {message['Subject']!r}"
    return found.group(0)


@dataclass
class Mailbox:
    sink: MailSink

    def last(self, to: str, subject_has: str, timeout: float = 20.0) -> EmailMessage:
        """The newest message to `to` whose subject contains `subject_has` (waits for it to arrive: mail goes
        through the outbox topic and the mailer function, so it arrives a moment after the answer)."""

        def match(message: EmailMessage) -> bool:
            return to.lower() in str(message["To"]).lower() and subject_has.lower() in str(message["Subject"]).lower()

        self.sink.wait_for(match, timeout=timeout)
        return [m for m in self.sink.messages() if match(m)][-1]

    def count(self, to: str, subject_has: str = "") -> int:
        return sum(
            1
            for m in self.sink.messages()
            if to.lower() in str(m["To"]).lower() and subject_has.lower() in str(m["Subject"]).lower()
        )


def signup(client: Client, email: str, password: str, first_name: str = "Ada", last_name: str = "Lovelace") -> None:
    """Start a sign-up (no account exists until its link is confirmed with the same password)."""
    body = {"email": email, "password": password, "first_name": first_name, "last_name": last_name}
    response = client.post("/auth/signup", json=body)
    assert response.status_code == 202, response.text


def confirm_signup(client: Client, token: str, password: str) -> Any:
    """What the verification page's button does: POST the link's token with the sign-up's password."""
    return client.post("/auth/verify-email", json={"token": token, "password": password})


def signup_and_verify(client: Client, mailbox: Mailbox, email: str | None = None) -> tuple[str, str]:
    """Register an account and confirm it with the mailed link and the password; returns (email, password)."""
    email = email or new_email()
    password = new_password()
    signup(client, email, password)
    message = mailbox.last(email, "confirm your email")
    confirmed = confirm_signup(client, link_token(message), password)
    assert confirmed.status_code == 200, confirmed.text
    return email, password


def google_id_token(stack: Any, sub: str, email: str, name: str = "Grace Hopper", verified: bool = True) -> dict:
    """Sign in to the Firebase Auth emulator as a Google user, as the web client does with the Google
    provider; the answer's `idToken` is what `POST /auth/google` (or a step-up's `google_id_token`) takes."""
    claims = quote(json.dumps({"sub": sub, "email": email, "email_verified": verified, "name": name}))
    response = requests.post(
        f"http://{stack.env['FIREBASE_AUTH_EMULATOR_HOST']}/identitytoolkit.googleapis.com/v1/"
        "accounts:signInWithIdp?key=fake-api-key",
        json={
            "postBody": f"providerId=google.com&id_token={claims}",
            "requestUri": "http://localhost",
            "returnSecureToken": True,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def signin(client: Client, email: str, password: str, **extra: Any) -> Client:
    response = client.post("/auth/signin", json={"email": email, "password": password, **extra})
    assert response.status_code == 200, response.text
    return client.clone(token=response.json()["session_token"])


def poll(fetch: Callable[[], Any], until: Callable[[Any], Any] = bool, timeout: float = 120.0, what: str = "") -> Any:
    """Call `fetch` until `until(value)` holds (the stack works asynchronously: Pub/Sub pushes, the worker)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = fetch()
        if until(value):
            return value
        assert time.monotonic() < deadline, (
            f"timed out after {timeout:g}s waiting for {what or 'a condition'}: {value!r}"
        )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def staff_session(client: Client, stack: Any, *roles: str, name: str = "Dee Pio") -> tuple[Client, str]:
    """A staff member signed in with Google (the Auth emulator); `roles` granted straight in Firestore (the
    CLI's job, tested on its own). Returns (their client, their account id)."""
    from google.cloud import firestore

    token = google_id_token(stack, secrets.token_hex(8), new_email("staff"), name=name)["idToken"]
    response = client.post("/auth/google", json={"id_token": token})
    assert response.status_code == 200, response.text
    account_id = response.json()["user"]["id"]
    if roles:
        db = firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])
        db.collection("accounts").document(account_id).update({"roles": list(roles)})
    return client.clone(token=response.json()["session_token"]), account_id


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m shared.cli ...` against the test stack (its env is this process's env)."""
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
