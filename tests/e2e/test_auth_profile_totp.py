"""Profile and rectification (P15), the optional TOTP second factor (P25)."""

from __future__ import annotations

import time

import pyotp
import pytest

from devstack.mail import message_text
from tests.support import Client, Mailbox, link_token, new_email, new_password, signin, signup_and_verify


@pytest.mark.policy("P15")
def test_profile_holds_names_login_and_billing_contact_and_is_editable(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    contact = {
        "name": "Ada L.",
        "email": "billing@example.com",
        "address_line1": "1 rue X",
        "city": "Paris",
        "country": "FR",
    }
    updated = session.patch("/auth/me", json={"first_name": "Augusta", "billing_contact": contact})
    assert updated.status_code == 200, updated.text
    me = session.get("/auth/me").json()
    assert me["first_name"] == "Augusta" and me["last_name"] == "Lovelace"
    assert me["billing_contact"] == contact
    assert set(me) == {
        "id", "email", "email_verified", "pending_email", "first_name", "last_name",
        "billing_contact", "auth_methods", "totp_enabled", "roles", "status", "created_at", "purge_at",
    }  # fmt: skip


@pytest.mark.policy("P15")
@pytest.mark.parametrize(
    "patch",
    [
        {"first_name": ""},
        {"first_name": None},
        {"billing_contact": {"country": "France"}},
        {"role": "admin"},
        {"email": "nope"},
    ],
)
def test_bad_profile_edits_are_4xx(client: Client, mailbox: Mailbox, patch: dict) -> None:
    session = signin(client, *signup_and_verify(client, mailbox))
    response = session.patch("/auth/me", json=patch)
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.policy("P15", "P16")
def test_changing_the_email_takes_effect_only_once_the_new_address_is_verified(
    client: Client, mailbox: Mailbox
) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    new = new_email("moved")
    bare = session.patch("/auth/me", json={"email": new})
    assert bare.status_code == 403 and bare.json()["type"].endswith("/reauthentication-required")
    asked = session.patch("/auth/me", json={"email": new, "current_password": password})
    assert asked.status_code == 200, asked.text
    assert asked.json()["email"] == email and asked.json()["pending_email"] == new
    assert session.get("/auth/me").json()["email"] == email
    assert mailbox.last(email, "change of your login")
    message = mailbox.last(new, "confirm your new email")
    assert "/auth/confirm-email-change#token=" in message_text(message) and "?token=" not in message_text(message)
    token = link_token(message)
    assert client.get("/auth/confirm-email-change").status_code == 200
    assert session.get("/auth/me").json()["email"] == email, "opening the page changes nothing"
    confirmed = client.post("/auth/confirm-email-change", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.json() == {"status": "verified", "email": new}
    assert client.post("/auth/confirm-email-change", json={"token": token}).status_code == 400, "single use"
    me = session.get("/auth/me").json()
    assert me["email"] == new and me["pending_email"] is None
    signin(client, new, password)
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401


@pytest.mark.policy("P25")
def test_totp_enrol_activate_sign_in_and_recovery_codes(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    refused = session.post("/auth/mfa/totp/enroll", json={})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/reauthentication-required")
    enrolled = session.post("/auth/mfa/totp/enroll", json={"current_password": password})
    assert enrolled.status_code == 200, enrolled.text
    enrol = enrolled.json()
    assert enrol["otpauth_uri"].startswith("otpauth://totp/WizyVision:")
    totp = pyotp.TOTP(enrol["secret"])
    assert (
        session.post(
            "/auth/mfa/totp/activate", json={"code": "000000" if totp.now() != "000000" else "111111"}
        ).status_code
        == 401
    )
    step = int(time.time()) // 30
    # The enrolment's step-up counts for the next minutes of this session: the code alone suffices.
    activated = session.post("/auth/mfa/totp/activate", json={"code": totp.at(step * 30)})
    assert activated.status_code == 200, activated.text
    codes = activated.json()["recovery_codes"]
    assert len(codes) == 10
    assert mailbox.last(email, "two-step verification turned on")

    needs = client.post("/auth/signin", json={"email": email, "password": password})
    assert needs.status_code == 401 and needs.json()["type"].endswith("/mfa-required")
    # The code of the step used for activation is spent; the next step's code works once.
    assert (
        client.post(
            "/auth/signin", json={"email": email, "password": password, "totp_code": totp.at(step * 30)}
        ).status_code
        == 401
    )
    nxt = totp.at((step + 1) * 30)
    signin(client, email, password, totp_code=nxt)
    assert client.post("/auth/signin", json={"email": email, "password": password, "totp_code": nxt}).status_code == 401

    signin(client, email, password, recovery_code=codes[0])
    assert (
        client.post("/auth/signin", json={"email": email, "password": password, "recovery_code": codes[0]}).status_code
        == 401
    )

    assert session.post("/auth/mfa/totp/disable", json={"current_password": new_password()}).status_code == 403
    assert session.post("/auth/mfa/totp/disable", json={"current_password": password}).status_code == 200
    assert mailbox.last(email, "two-step verification turned off")
    signin(client, email, password)


@pytest.mark.policy("P25")
def test_a_totp_code_is_a_step_up_proof(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    totp = pyotp.TOTP(session.post("/auth/mfa/totp/enroll", json={"current_password": password}).json()["secret"])
    step = int(time.time()) // 30
    activated = session.post("/auth/mfa/totp/activate", json={"code": totp.at(step * 30)})
    assert activated.status_code == 200, activated.text
    fresh = signin(client.clone(), email, password, recovery_code=activated.json()["recovery_codes"][0])
    assert fresh.post("/auth/mfa/totp/disable", json={}).status_code == 403
    wrong = fresh.post("/auth/mfa/totp/disable", json={"totp_code": "000000" if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 403
    assert fresh.post("/auth/mfa/totp/disable", json={"totp_code": totp.at((step + 1) * 30)}).status_code == 200
    assert fresh.get("/auth/me").json()["totp_enabled"] is False
