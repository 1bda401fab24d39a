"""The account-takeover paths of the identity issue, each replayed against the gateway: every one must fail.

Each test is the attack as an attacker (or a mail scanner, or a thief holding only a session) would
run it, and checks that it now gets nothing (P1, P2, P16, P22, P25).
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pyotp
import pytest
import requests

from devstack.mail import message_text
from tests.support import (
    Client,
    Mailbox,
    confirm_signup,
    google_id_token,
    link_token,
    link_url,
    new_email,
    new_ip,
    new_password,
    signin,
    signup,
    signup_and_verify,
)

PROBLEM = "application/problem+json"


def _strip(response: requests.Response) -> dict[str, Any]:
    """A problem body without its per-request `instance`: what must not differ between two answers."""
    return {k: v for k, v in response.json().items() if k != "instance"}


def _signin_answer(client: Client, email: str, password: str) -> requests.Response:
    return client.post("/auth/signin", json={"email": email, "password": password})


def _mails(mailbox: Mailbox, to: str, subject_has: str) -> list[EmailMessage]:
    return [
        m
        for m in mailbox.sink.messages()
        if to.lower() in str(m["To"]).lower() and subject_has.lower() in str(m["Subject"]).lower()
    ]


def _link_for(mailbox: Mailbox, to: str, first_name: str, timeout: float = 20.0) -> str:
    """The verification link of the sign-up made under `first_name` (the mail greets the signer by it)."""

    def match(m: EmailMessage) -> bool:
        return (
            to.lower() in str(m["To"]).lower()
            and "confirm your email" in str(m["Subject"]).lower()
            and f"Hello {first_name}," in message_text(m)
        )

    mailbox.sink.wait_for(match, timeout=timeout)
    return link_token([m for m in mailbox.sink.messages() if match(m)][-1])


def _enable_totp(session: Client, password: str) -> tuple[pyotp.TOTP, int, list[str]]:
    """Turn the second factor on; returns the authenticator, the step its activation spent, the recovery codes."""
    enrolled = session.post("/auth/mfa/totp/enroll", json={"current_password": password})
    assert enrolled.status_code == 200, enrolled.text
    totp = pyotp.TOTP(enrolled.json()["secret"])
    step = int(time.time()) // 30
    activated = session.post("/auth/mfa/totp/activate", json={"code": totp.at(step * 30)})
    assert activated.status_code == 200, activated.text
    return totp, step, activated.json()["recovery_codes"]


# -- pre-registration takeover (P16) ------------------------------------------------------------------
@pytest.mark.policy("P16", "P22")
@pytest.mark.parametrize("order", ["attacker_link_first", "own_link_first"])
def test_pre_registration_never_activates_the_attackers_password(client: Client, mailbox: Mailbox, order: str) -> None:
    victim_email = new_email("victim")
    attacker, victim = client.clone(ip=new_ip()), client.clone(ip=new_ip())
    attacker_password, victim_password = new_password("mal"), new_password("vic")

    # The attacker signs up first with the victim's address and a password of their own.
    signup(attacker, victim_email, attacker_password, "Mallory", "Attacker")
    before = _signin_answer(attacker, victim_email, attacker_password)
    unknown = _signin_answer(attacker, new_email(), attacker_password)
    assert before.status_code == unknown.status_code == 401
    assert _strip(before) == _strip(unknown), "no account exists and the answer says nothing more"

    # The victim signs up later with their own password; two links now sit in the victim's mailbox.
    signup(victim, victim_email, victim_password, "Victor", "Victim")
    after = _signin_answer(attacker, victim_email, attacker_password)
    assert after.status_code == 401 and _strip(after) == _strip(before), "no oracle after the victim's sign-up"
    attacker_link = _link_for(mailbox, victim_email, "Mallory")
    victim_link = _link_for(mailbox, victim_email, "Victor")
    assert attacker_link != victim_link

    if order == "attacker_link_first":
        # The victim clicks the attacker's link first and types their own password: refused, nothing made.
        refused = confirm_signup(victim, attacker_link, victim_password)
        assert refused.status_code == 401 and refused.headers["Content-Type"] == PROBLEM
        assert refused.json()["type"].endswith("/signup-password-mismatch")
        assert _signin_answer(attacker, victim_email, attacker_password).status_code == 401
        assert _signin_answer(victim, victim_email, victim_password).status_code == 401
        assert confirm_signup(victim, victim_link, victim_password).status_code == 200
    else:
        assert confirm_signup(victim, victim_link, victim_password).status_code == 200
        late = confirm_signup(victim, attacker_link, victim_password)
        assert late.status_code in (400, 401, 409), late.text
        # Even the attacker's own password on the attacker's link (were it leaked) makes nothing now.
        assert confirm_signup(attacker, attacker_link, attacker_password).status_code in (400, 401, 409)

    assert _signin_answer(attacker, victim_email, attacker_password).status_code == 401
    session = signin(victim, victim_email, victim_password)
    me = session.get("/auth/me").json()
    assert me["first_name"] == "Victor" and me["email_verified"] is True

    # Signing up again changes nothing: the owner is told, the attacker's password still opens nothing.
    again = attacker.post(
        "/auth/signup",
        json={"email": victim_email, "password": attacker_password, "first_name": "Mallory", "last_name": "A"},
    )
    assert again.status_code == 202
    assert mailbox.last(victim_email, "tried to create an account")
    assert _signin_answer(attacker, victim_email, attacker_password).status_code == 401
    assert session.get("/auth/me").json()["first_name"] == "Victor"
    signin(victim.clone(), victim_email, victim_password)


@pytest.mark.policy("P16")
def test_parallel_signups_for_one_address_activate_only_their_own_password(client: Client, mailbox: Mailbox) -> None:
    email = new_email("race")
    one, two = client.clone(ip=new_ip()), client.clone(ip=new_ip())
    pw_one, pw_two = new_password("one"), new_password("two")
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda args: args[0].post(
                    "/auth/signup",
                    json={"email": email, "password": args[1], "first_name": args[2], "last_name": "Race"},
                ),
                [(one, pw_one, "Uno"), (two, pw_two, "Dos")],
            )
        )
    assert [a.status_code for a in answers] == [202, 202]
    link_one, link_two = _link_for(mailbox, email, "Uno"), _link_for(mailbox, email, "Dos")

    # Each link activates only the password typed with its own sign-up.
    cross = confirm_signup(two, link_one, pw_two)
    assert cross.status_code == 401 and cross.json()["type"].endswith("/signup-password-mismatch")
    cross = confirm_signup(one, link_two, pw_one)
    assert cross.status_code == 401 and cross.json()["type"].endswith("/signup-password-mismatch")
    assert confirm_signup(two, link_two, pw_two).status_code == 200
    # The other sign-up is void once the address has an account: one account, one password.
    loser = confirm_signup(one, link_one, pw_one)
    assert loser.status_code in (400, 409), loser.text
    assert _signin_answer(one, email, pw_one).status_code == 401
    session = signin(two, email, pw_two)
    assert session.get("/auth/me").json()["first_name"] == "Dos"


# -- a mail scanner fetching the links (P16, P25) -----------------------------------------------------
def _scan(url: str) -> None:
    """What a mail scanner or a link preview does: GET (following redirects) and HEAD, with and without
    the fragment turned into a query string."""
    page, _, fragment = url.partition("#")
    for target in (url, page, f"{page}?{fragment}"):
        assert requests.get(target, allow_redirects=True, timeout=10).status_code < 500
        assert requests.head(target, allow_redirects=True, timeout=10).status_code < 500


@pytest.mark.policy("P16", "P25", "P15")
def test_fetching_mail_links_changes_nothing(client: Client, mailbox: Mailbox) -> None:
    # The verification link: scanned, no account exists; the link still works for the person.
    email, password = new_email("scan"), new_password()
    signup(client, email, password)
    message = mailbox.last(email, "confirm your email")
    url = link_url(message)
    assert "?token=" not in message_text(message) and "/auth/verify-email#token=" in url
    _scan(url)
    assert _signin_answer(client, email, password).status_code == 401, "a scanner created the account"
    assert confirm_signup(client, link_token(message), password).status_code == 200

    # The reset link: scanned, the password is unchanged and the link still works.
    session = signin(client, email, password)
    assert client.post("/auth/password/forgot", json={"email": email}).status_code == 202
    reset = mailbox.last(email, "reset your password")
    url = link_url(reset)
    assert "?token=" not in message_text(reset) and "/auth/reset-password#token=" in url
    _scan(url)
    assert session.get("/auth/me").status_code == 200, "a scanner ended the sessions"
    assert _signin_answer(client, email, password).status_code == 200, "a scanner changed the password"

    # The email-change link: scanned, the login is unchanged.
    moved = new_email("moved")
    assert session.patch("/auth/me", json={"email": moved, "current_password": password}).status_code == 200
    change = mailbox.last(moved, "confirm your new email")
    url = link_url(change)
    assert "?token=" not in message_text(change) and "/auth/confirm-email-change#token=" in url
    _scan(url)
    assert session.get("/auth/me").json()["email"] == email, "a scanner changed the login"

    # Every link is still good for the person who clicks its button.
    new = new_password()
    assert (
        client.post("/auth/password/reset", json={"token": link_token(reset), "new_password": new}).status_code == 200
    )
    session = signin(client, email, new)
    assert client.post("/auth/confirm-email-change", json={"token": link_token(change)}).status_code == 200
    assert session.get("/auth/me").json()["email"] == moved


# -- what a stolen session alone can do (P25) ---------------------------------------------------------
@pytest.mark.policy("P25")
def test_a_session_alone_cannot_enrol_a_second_factor(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    thief = signin(client, email, password)
    for body in ({}, {"current_password": new_password()}):
        refused = thief.post("/auth/mfa/totp/enroll", json=body)
        assert refused.status_code == 403 and refused.headers["Content-Type"] == PROBLEM, refused.text
    assert refused.json()["type"].endswith("/invalid-current-password")
    bare = thief.post("/auth/mfa/totp/enroll", json={})
    assert bare.json()["type"].endswith("/reauthentication-required")
    assert "current_password" in bare.json()["methods"]
    me = thief.get("/auth/me").json()
    assert me["totp_enabled"] is False
    enrolled = thief.post("/auth/mfa/totp/enroll", json={"current_password": password})
    assert enrolled.status_code == 200 and enrolled.json()["otpauth_uri"].startswith("otpauth://")


@pytest.mark.policy("P25", "P15")
def test_email_change_needs_proof_before_anything_is_applied(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    thief = signin(client, email, password)
    target = new_email("thief")
    refused = thief.patch("/auth/me", json={"first_name": "Stolen", "email": target})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/reauthentication-required")
    wrong = thief.patch("/auth/me", json={"first_name": "Stolen", "email": target, "current_password": new_password()})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("/invalid-current-password")
    me = thief.get("/auth/me").json()
    assert me["first_name"] == "Ada", "the name was changed although the request was refused"
    assert me["email"] == email and me["pending_email"] is None
    time.sleep(1)
    assert mailbox.count(target) == 0, "a confirmation link went out without proof"


@pytest.mark.policy("P25", "P2")
def test_a_google_only_account_changes_its_email_only_with_a_fresh_google_sign_in(client: Client, stack: Any) -> None:
    email, sub = new_email("gonly"), secrets.token_hex(8)
    answer = client.post("/auth/google", json={"id_token": google_id_token(stack, sub, email)["idToken"]})
    assert answer.status_code == 200, answer.text
    session = client.clone(token=answer.json()["session_token"])
    target = new_email("gmoved")

    bare = session.patch("/auth/me", json={"first_name": "Stolen", "email": target})
    assert bare.status_code == 403 and bare.json()["type"].endswith("/reauthentication-required")
    assert bare.json()["methods"] == ["google_id_token"]
    guess = session.patch("/auth/me", json={"email": target, "current_password": new_password()})
    assert guess.status_code == 403, "an account with no password cannot be proven with one"
    other = google_id_token(stack, secrets.token_hex(8), new_email("other"))["idToken"]
    mismatch = session.patch("/auth/me", json={"email": target, "google_id_token": other})
    assert mismatch.status_code == 403 and mismatch.json()["type"].endswith("/reauthentication-mismatch")
    assert session.get("/auth/me").json()["first_name"] == "Grace"
    assert session.get("/auth/me").json()["pending_email"] is None

    fresh = google_id_token(stack, sub, email)["idToken"]
    accepted = session.patch("/auth/me", json={"email": target, "google_id_token": fresh})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["pending_email"] == target and accepted.json()["email"] == email


@pytest.mark.policy("P22", "P25")
@pytest.mark.parametrize("route", ["profile", "password"])
def test_guessing_the_current_password_is_throttled(client: Client, mailbox: Mailbox, route: str) -> None:
    email, password = signup_and_verify(client, mailbox)
    thief = signin(client, email, password)
    statuses = []
    for _ in range(15):
        guess = new_password()
        if route == "profile":
            answer = thief.patch("/auth/me", json={"email": new_email("t"), "current_password": guess})
        else:
            answer = thief.post("/auth/password/change", json={"current_password": guess, "new_password": guess})
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.headers["Content-Type"] == PROBLEM and int(answer.headers["Retry-After"]) >= 1
            break
    assert 429 in statuses, f"15 wrong current passwords were all judged: {statuses}"
    assert statuses.index(429) < 14 and set(statuses[: statuses.index(429)]) == {403}, statuses
    # The lock is the account's: its sign-in is locked as well, whatever the network.
    assert _signin_answer(client.clone(ip=new_ip()), email, password).status_code == 429


@pytest.mark.policy("P22")
def test_parallel_wrong_signins_from_many_networks_judge_at_most_ten(client: Client, mailbox: Mailbox) -> None:
    email, _ = signup_and_verify(client, mailbox)
    ips: set[str] = set()
    while len(ips) < 30:
        ips.add(new_ip())
    clients = [client.clone(ip=ip) for ip in ips]

    def attempt(attacker: Client) -> requests.Response:
        return attacker.post("/auth/signin", json={"email": email, "password": new_password()})

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(attempt, clients))
    statuses = [a.status_code for a in answers]
    assert not [s for s in statuses if s >= 500 and s != 503], statuses
    assert set(statuses) <= {401, 429, 503}, statuses
    assert statuses.count(401) <= 10, f"{statuses.count(401)} guesses were judged: {sorted(statuses)}"
    for answer in answers:
        assert answer.headers["Content-Type"] == PROBLEM
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1


# -- malformed input (P22) ----------------------------------------------------------------------------
@pytest.mark.policy("P22")
def test_deeply_nested_json_is_a_400_problem(client: Client) -> None:
    answer = client.post("/auth/signin", data="[" * 5000, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    assert answer.headers["Content-Type"] == PROBLEM


@pytest.mark.policy("P25", "P22")
@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "۱۲۳۴۵۶", "１２３４５６"])
def test_non_ascii_digits_as_totp_code_are_a_401(client: Client, mailbox: Mailbox, code: str) -> None:
    email, password = signup_and_verify(client, mailbox)
    _enable_totp(signin(client, email, password), password)
    answer = client.post("/auth/signin", json={"email": email, "password": password, "totp_code": code})
    assert answer.status_code == 401, answer.text
    assert answer.headers["Content-Type"] == PROBLEM
    assert answer.json()["type"].endswith("/invalid-mfa-code")


@pytest.mark.policy("P25")
def test_reset_of_a_totp_account_needs_a_code_and_keeps_the_link(client: Client, mailbox: Mailbox) -> None:
    email, password = signup_and_verify(client, mailbox)
    totp, step, _codes = _enable_totp(signin(client, email, password), password)
    assert client.post("/auth/password/forgot", json={"email": email}).status_code == 202
    token = link_token(mailbox.last(email, "reset your password"))
    new = new_password()

    bare = client.post("/auth/password/reset", json={"token": token, "new_password": new})
    assert bare.status_code == 401 and bare.headers["Content-Type"] == PROBLEM
    assert bare.json()["type"].endswith("/mfa-required")
    wrong_code = "000000" if totp.now() != "000000" else "111111"
    wrong = client.post("/auth/password/reset", json={"token": token, "new_password": new, "totp_code": wrong_code})
    assert wrong.status_code == 401 and wrong.json()["type"].endswith("/invalid-mfa-code")
    assert _signin_answer(client, email, new).status_code == 401, "the password changed without the code"

    done = client.post(
        "/auth/password/reset", json={"token": token, "new_password": new, "totp_code": totp.at((step + 1) * 30)}
    )
    assert done.status_code == 200, done.text
    assert _signin_answer(client, email, password).status_code == 401


# -- Google linking (P2, P22) -------------------------------------------------------------------------
@pytest.mark.policy("P2", "P22")
def test_google_linking_to_a_password_account_mails_the_owner(client: Client, mailbox: Mailbox, stack: Any) -> None:
    email, password = signup_and_verify(client, mailbox)
    stranger = client.clone(ip=new_ip(), user_agent="Mozilla/5.0 (Linked) Chrome/131.0")
    answer = stranger.post(
        "/auth/google", json={"id_token": google_id_token(stack, secrets.token_hex(8), email)["idToken"]}
    )
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["user"]["auth_methods"]) == ["google", "password"]
    notice = mailbox.last(email, "Google sign-in was linked")
    text = message_text(notice)
    assert stranger.ip in text and "Chrome/131.0" in text and "/auth/reset-password" in text
    signin(client, email, password)  # the owner's password is untouched
