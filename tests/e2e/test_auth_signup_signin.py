"""Sign-up, verification and sign-in through the gateway, as a user does it (P1, P15, P16, P22)."""

from __future__ import annotations

import pytest

from devstack.mail import message_text
from tests.support import (
    Client,
    Mailbox,
    confirm_signup,
    link_token,
    new_email,
    new_ip,
    new_password,
    remember_password,
    signin,
    signup,
    signup_and_verify,
)

pytestmark = pytest.mark.policy("P1", "P16")

PROBLEM = "application/problem+json"


def test_signup_mail_link_then_signin(client: Client, mailbox: Mailbox) -> None:
    email, password = new_email(), new_password()
    signup(client, email, password)

    # No account exists before the address is confirmed: the answer is that of an unknown address.
    refused = client.post("/auth/signin", json={"email": email, "password": password})
    assert refused.status_code == 401 and refused.headers["Content-Type"] == PROBLEM
    assert refused.json()["type"].endswith("/invalid-credentials")

    message = mailbox.last(email, "confirm your email")
    assert "/auth/verify-email#token=" in message_text(message) and "?token=" not in message_text(message)
    token = link_token(message)
    page = client.get("/auth/verify-email")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "Confirm my address" in page.text and token not in page.text
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401

    confirmed = confirm_signup(client, token, password)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"status": "verified", "email": email}

    again = confirm_signup(client, token, password)
    assert again.status_code == 400 and again.headers["Content-Type"] == PROBLEM, "a verification link works once"

    session = signin(client, email, password)
    me = session.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == email and me.json()["email_verified"] is True
    assert me.headers["Cache-Control"] == "no-store"


@pytest.mark.policy("P16")
def test_confirmation_needs_the_password_typed_at_signup(client: Client, mailbox: Mailbox) -> None:
    email, password = new_email(), new_password()
    signup(client, email, password)
    token = link_token(mailbox.last(email, "confirm your email"))
    other = new_password()
    mismatch = confirm_signup(client, token, other)
    assert mismatch.status_code == 401 and mismatch.headers["Content-Type"] == PROBLEM
    assert mismatch.json()["type"].endswith("/signup-password-mismatch")
    assert other not in mismatch.text
    assert client.post("/auth/signin", json={"email": email, "password": other}).status_code == 401
    # A wrong password does not spend the link.
    assert confirm_signup(client, token, password).status_code == 200
    signin(client, email, password)


def test_taken_address_answers_the_same_and_mails_the_owner(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    fresh = client.post(
        "/auth/signup",
        json={"email": new_email(), "password": new_password(), "first_name": "A", "last_name": "B"},
    )
    squatter = new_password()
    taken = client.post(
        "/auth/signup", json={"email": email, "password": squatter, "first_name": "Eve", "last_name": "X"}
    )
    assert taken.status_code == fresh.status_code == 202
    assert taken.json() == fresh.json()
    notice = mailbox.last(email, "tried to create an account")
    text = message_text(notice)
    assert "already has an account" in text and "/auth/reset-password" in text and "token" not in text
    # Nothing changed on the account: its password is the same, the new one opens nothing.
    assert client.post("/auth/signin", json={"email": email, "password": squatter}).status_code == 401
    signin(client, email, password)


def test_resend_gives_a_fresh_link_and_voids_the_old_one(client: Client, mailbox: Mailbox) -> None:
    email, password = new_email(), new_password()
    signup(client, email, password)
    first = link_token(mailbox.last(email, "confirm your email"))
    assert client.post("/auth/verify-email/resend", json={"email": email}).status_code == 202
    mailbox.sink.wait_for(lambda m: email in str(m["To"]) and link_token(m) != first, timeout=20)
    second = link_token(mailbox.last(email, "confirm your email"))
    assert second != first
    stale = confirm_signup(client, first, password)
    assert stale.status_code == 400 and stale.headers["Content-Type"] == PROBLEM
    assert confirm_signup(client, second, password).status_code == 200
    signin(client, email, password)


def test_resend_and_forgot_answer_the_same_for_every_address(client: Client, mailbox: Mailbox) -> None:
    email, _ = signup_and_verify(client, mailbox)
    for path in ("/auth/verify-email/resend", "/auth/password/forgot"):
        known = client.post(path, json={"email": email})
        unknown = client.post(path, json={"email": new_email()})
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()


def test_unknown_user_and_wrong_password_get_the_same_answer(client: Client, mailbox: Mailbox) -> None:
    email, _ = signup_and_verify(client, mailbox)
    wrong = client.post("/auth/signin", json={"email": email, "password": new_password()})
    unknown = client.post("/auth/signin", json={"email": new_email(), "password": new_password()})
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: {k: v for k, v in r.json().items() if k != "instance"}  # noqa: E731
    assert strip(wrong) == strip(unknown)


@pytest.mark.policy("P1")
def test_long_non_ascii_password_counts_every_byte(client: Client, mailbox: Mailbox) -> None:
    """bcrypt reads 72 bytes; the pre-hash makes the 73rd byte and beyond count too."""
    email = new_email()
    base = "пароль-密码-κωδικός-" * 4  # far more than 72 UTF-8 bytes
    password = remember_password(base + "alpha")
    other = remember_password(base + "omega")
    assert len(password.encode()) > 72 and password.encode()[:72] == other.encode()[:72]
    signup(client, email, password, "Ю", "Z")
    token = link_token(mailbox.last(email, "confirm your email"))
    assert confirm_signup(client, token, other).status_code == 401, "the sign-up's check counts every byte too"
    assert confirm_signup(client, token, password).status_code == 200
    signin(client, email, password)
    assert client.post("/auth/signin", json={"email": email, "password": other}).status_code == 401


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw", "too-short"),
        ("x" * 129, "too-long"),
        ("password1234", "too-common"),
        ("aaaaaaaaaaaaaaaa", "too-repetitive"),
    ],
)
def test_weak_passwords_are_refused(client: Client, password: str, reason: str) -> None:
    remember_password(password)
    response = client.post(
        "/auth/signup", json={"email": new_email(), "password": password, "first_name": "A", "last_name": "B"}
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json()["errors"][0]["code"] == reason
    assert password not in response.text


def test_password_equal_to_email_is_refused(client: Client) -> None:
    email = remember_password(new_email())
    response = client.post(
        "/auth/signup", json={"email": email, "password": email, "first_name": "A", "last_name": "B"}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "matches-email"


@pytest.mark.policy("P22")
def test_lockout_after_ten_failures_with_retry_after(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    for _ in range(10):
        assert client.post("/auth/signin", json={"email": email, "password": new_password()}).status_code == 401
    locked = client.post("/auth/signin", json={"email": email, "password": password})
    assert locked.status_code == 429
    assert locked.headers["Content-Type"] == PROBLEM
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    # The lock is on the account: another network gets the same answer.
    assert (
        client.clone(ip=new_ip()).post("/auth/signin", json={"email": email, "password": password}).status_code == 429
    )


@pytest.mark.policy("P22")
def test_failures_and_lockout_are_security_events(client: Client, mailbox: Mailbox, stack: object) -> None:
    email, _ = signup_and_verify(client, mailbox)
    attacker = client.clone(ip=new_ip())
    for _ in range(10):
        attacker.post("/auth/signin", json={"email": email, "password": new_password()})
    # The owner's own network is locked too (the account key), so read the events through Firestore.
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.identity.model import ACCOUNT_EMAILS, SECURITY_EVENTS
    from shared.identity.tokens import email_key

    db = firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])  # type: ignore[attr-defined]
    account_id = db.collection(ACCOUNT_EMAILS).document(email_key(email)).get().to_dict()["account_id"]
    query = db.collection(SECURITY_EVENTS).where(filter=FieldFilter("account_id", "==", account_id))
    events = [d.to_dict() for d in query.stream()]
    kinds = [e["type"] for e in events]
    assert kinds.count("signin_failed") == 10
    assert "signin_locked" in kinds
    assert all(e["ip"] == attacker.ip for e in events if e["type"] == "signin_failed")


@pytest.mark.policy("P22")
def test_per_ip_throttle_across_accounts(client: Client) -> None:
    for _ in range(10):
        client.post("/auth/signin", json={"email": new_email(), "password": new_password()})
    assert client.post("/auth/signin", json={"email": new_email(), "password": new_password()}).status_code == 429
