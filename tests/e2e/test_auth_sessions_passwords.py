"""Session records, password change and reset, new-device notices (P21, P22, P25)."""

from __future__ import annotations

import pytest

from devstack.mail import message_text
from tests.support import Client, Mailbox, link_token, new_email, new_ip, new_password, signin, signup_and_verify


@pytest.mark.policy("P21")
def test_sessions_record_connection_information_and_can_be_revoked(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    laptop = signin(client, email, password)
    phone = signin(client.clone(ip=new_ip(), user_agent="Mozilla/5.0 (iPhone) Mobile Safari"), email, password)

    listed = laptop.get("/auth/sessions").json()["sessions"]
    assert len(listed) == 2
    mine = next(s for s in listed if s["current"])
    other = next(s for s in listed if not s["current"])
    assert mine["ip"] == laptop.ip and "Firefox" in mine["user_agent"]
    assert other["ip"] == phone.ip and "iPhone" in other["user_agent"]
    for record in listed:
        assert {"created_at", "last_seen_at", "expires_at"} <= record.keys()

    # Ending another session needs a recent step-up: a stolen session alone cannot sign the owner out.
    refused = laptop.delete(f"/auth/sessions/{other['id']}")
    assert refused.status_code == 403 and refused.json()["type"].endswith("/reauthentication-required")
    assert phone.get("/auth/me").status_code == 200
    wrong = laptop.post("/auth/reauthenticate", json={"current_password": new_password()})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("/invalid-current-password")
    step_up = laptop.post("/auth/reauthenticate", json={"current_password": password})
    assert step_up.status_code == 200 and step_up.json() == {"status": "reauthenticated", "method": "password"}
    assert laptop.delete(f"/auth/sessions/{other['id']}").status_code == 204
    dead = phone.get("/auth/me")
    assert dead.status_code == 401 and dead.headers["Content-Type"] == "application/problem+json"
    assert laptop.delete(f"/auth/sessions/{other['id']}").status_code == 404

    assert laptop.post("/auth/signout").status_code == 204
    assert laptop.get("/auth/me").status_code == 401


@pytest.mark.policy("P21", "P20")
def test_a_session_cannot_revoke_another_accounts_session(client: Client, mailbox: Mailbox) -> None:
    a = signin(client, *signup_and_verify(client, mailbox))
    b = signin(client, *signup_and_verify(client, mailbox))
    b_session = b.get("/auth/sessions").json()["sessions"][0]["id"]
    assert a.delete(f"/auth/sessions/{b_session}").status_code == 404
    assert b.get("/auth/me").status_code == 200


@pytest.mark.policy("P22")
def test_new_device_sends_a_notice_but_the_first_sign_in_does_not(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    signin(client, email, password)
    signin(client, email, password)
    assert mailbox.count(email, "new sign-in") == 0
    stranger = client.clone(ip=new_ip(), user_agent="curl/8.5.0")
    signin(stranger, email, password)
    notice = mailbox.last(email, "new sign-in")
    assert stranger.ip in notice.get_content() and "curl/8.5.0" in notice.get_content()


@pytest.mark.policy("P25")
def test_password_change_ends_every_other_session(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    here = signin(client, email, password)
    there = signin(client.clone(ip=new_ip()), email, password)
    new = new_password()

    bare = here.post("/auth/password/change", json={"new_password": new})
    assert bare.status_code == 403 and bare.json()["type"].endswith("/reauthentication-required")
    wrong = here.post("/auth/password/change", json={"current_password": new_password(), "new_password": new})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("/invalid-current-password")
    changed = here.post("/auth/password/change", json={"current_password": password, "new_password": new})
    assert changed.status_code == 200 and changed.json()["sessions_ended"] == 1

    assert there.get("/auth/me").status_code == 401
    assert here.get("/auth/me").status_code == 200
    assert mailbox.last(email, "password was changed")
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401
    signin(client, email, new)


@pytest.mark.policy("P25")
def test_forgotten_password_reset_ends_every_session(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    assert client.post("/auth/password/forgot", json={"email": email}).status_code == 202
    message = mailbox.last(email, "reset your password")
    assert "/auth/reset-password#token=" in message_text(message) and "?token=" not in message_text(message)
    token = link_token(message)
    page = client.get("/auth/reset-password")
    assert page.status_code == 200 and "Set the new password" in page.text
    assert session.get("/auth/me").status_code == 200, "opening the page changes nothing"

    weak = client.post("/auth/password/reset", json={"token": token, "new_password": "password1234"})
    assert weak.status_code == 422, "a refused password leaves the link usable"
    new = new_password()
    assert client.post("/auth/password/reset", json={"token": token, "new_password": new}).status_code == 200
    assert client.post("/auth/password/reset", json={"token": token, "new_password": new_password()}).status_code == 400
    assert mailbox.last(email, "password was changed")
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401

    assert session.get("/auth/me").status_code == 401
    signin(client, email, new)


@pytest.mark.policy("P25")
def test_forgot_answers_the_same_for_unknown_addresses(client: Client, mailbox: Mailbox) -> None:
    email, _ = signup_and_verify(client, mailbox)
    known = client.post("/auth/password/forgot", json={"email": email})
    nobody = new_email()
    unknown = client.post("/auth/password/forgot", json={"email": nobody})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() and known.json()["status"] == "accepted"
    assert mailbox.last(email, "reset your password")
    assert mailbox.count(nobody) == 0
