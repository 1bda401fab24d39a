"""Google sign-in through the Firebase Authentication emulator (P2, P3)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import requests
from google.cloud import firestore

from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS
from shared.identity.tokens import email_key
from tests.support import (
    Client,
    Mailbox,
    confirm_signup,
    google_id_token,
    link_token,
    new_email,
    new_password,
    signup,
)

pytestmark = pytest.mark.policy("P2")


def _emulator(stack: Any) -> str:
    return "http://" + stack.env["FIREBASE_AUTH_EMULATOR_HOST"]


def _db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


def _account_doc(stack: Any, email: str) -> dict:
    db = _db(stack)
    account_id = db.collection(ACCOUNT_EMAILS).document(email_key(email)).get().to_dict()["account_id"]
    return db.collection(ACCOUNTS).document(account_id).get().to_dict()


@pytest.mark.policy("P3")
def test_google_sign_in_creates_an_account_keeping_only_needed_claims(client: Client, stack: Any) -> None:
    email, sub = new_email("google"), secrets.token_hex(8)
    idp = google_id_token(stack, sub, email)
    response = client.post("/auth/google", json={"id_token": idp["idToken"]})
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert user["email"] == email and user["email_verified"] and user["auth_methods"] == ["google"]
    assert (user["first_name"], user["last_name"]) == ("Grace", "Hopper")

    doc = _account_doc(stack, email)
    assert doc["google_subject"] == sub
    stored = json.dumps(doc, default=str)
    for secret in (idp["idToken"], idp.get("refreshToken", "-"), idp.get("oauthIdToken", "-")):
        assert secret not in stored
    assert not any("token" in key.lower() for key in doc), "no Google token of any kind is kept (P3)"

    session = client.clone(token=response.json()["session_token"])
    assert session.get("/auth/me").json()["email"] == email


def test_link_is_keyed_on_the_subject_not_the_email(client: Client, stack: Any) -> None:
    sub = secrets.token_hex(8)
    first = client.post("/auth/google", json={"id_token": google_id_token(stack, sub, new_email("g"))["idToken"]})
    # The same Google account later shows another address: still the same WizyVision account.
    second = client.post("/auth/google", json={"id_token": google_id_token(stack, sub, new_email("g2"))["idToken"]})
    assert first.status_code == second.status_code == 200
    assert first.json()["user"]["id"] == second.json()["user"]["id"]


@pytest.mark.policy("P16")
def test_google_does_not_take_over_a_pending_signup(client: Client, mailbox: Mailbox, stack: Any) -> None:
    email, squatter_password = new_email(), new_password()
    squatter = client.clone()
    signup(squatter, email, squatter_password, "Mal", "Lory")
    squatter_link = link_token(mailbox.last(email, "confirm your email"))
    response = client.clone(ip="198.51.100.7").post(
        "/auth/google", json={"id_token": google_id_token(stack, secrets.token_hex(8), email)["idToken"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["auth_methods"] == ["google"], "the pending sign-up's password is not taken"
    # Neither the squatter's password nor the sign-up's link opens the account.
    assert squatter.post("/auth/signin", json={"email": email, "password": squatter_password}).status_code == 401
    assert confirm_signup(squatter, squatter_link, squatter_password).status_code == 400
    assert squatter.post("/auth/signin", json={"email": email, "password": squatter_password}).status_code == 401
    # The owner can set a password through a reset.
    client.post("/auth/password/forgot", json={"email": email})
    token = link_token(mailbox.last(email, "reset your password"))
    new = new_password()
    assert client.post("/auth/password/reset", json={"token": token, "new_password": new}).status_code == 200
    assert client.post("/auth/signin", json={"email": email, "password": new}).status_code == 200


def test_revoked_google_token_is_refused(client: Client, stack: Any) -> None:
    idp = google_id_token(stack, secrets.token_hex(8), new_email("revoked"))
    assert client.post("/auth/google", json={"id_token": idp["idToken"]}).status_code == 200
    # Revoke every token issued up to now (+5 s: the emulator counts whole seconds, so a token minted in the
    # current second must fall before the cut whatever the clock's fraction).
    update = requests.post(
        f"{_emulator(stack)}/identitytoolkit.googleapis.com/v1/projects/{stack.env['GOOGLE_CLOUD_PROJECT']}/accounts:update",
        json={"localId": idp["localId"], "validSince": str(int(time.time()) + 5)},
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    assert update.status_code == 200, update.text
    refused = client.post("/auth/google", json={"id_token": idp["idToken"]})
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/google-token-revoked")


def test_a_password_provider_token_is_not_a_google_identity(client: Client, stack: Any) -> None:
    signup = requests.post(
        f"{_emulator(stack)}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=fake-api-key",
        json={"email": new_email("fb"), "password": new_password(), "returnSecureToken": True},
        timeout=10,
    )
    refused = client.post("/auth/google", json={"id_token": signup.json()["idToken"]})
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/google-provider-required")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "x" * 5000])
def test_garbage_tokens_get_a_401_problem(client: Client, token: str) -> None:
    refused = client.post("/auth/google", json={"id_token": token})
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
