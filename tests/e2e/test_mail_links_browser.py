"""Every link the auth mails carry, opened in a real browser as a person would (P16, P25, P15, P1).

Chromium (the system package, `/usr/bin/chromium`: `.ci/run` installs it on a fresh machine) is
driven by Playwright. For each mail — the address confirmation, "someone tried to create an
account", the password reset, the email change — the test opens the link, fills the page's form by
its labels (functions/auth/routes.py), clicks its button, and checks the outcome through the API. On
every page it checks that the token left the address bar once the page loaded (the page strips the
fragment), that no request carried the token in its URL, and that no Content-Security-Policy
violation or script error happened.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from devstack.mail import message_text
from tests.support import (
    Client,
    Mailbox,
    link_token,
    link_url,
    new_email,
    new_ip,
    new_password,
    signin,
    signup,
    signup_and_verify,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Runs before the page's own script: records every CSP violation the page raises.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A browser on its own network address; each link opens in a new tab, as a mail client opens it."""

    context: BrowserContext
    page: Page | None = None
    pages: list[Page] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def goto(self, url: str) -> None:
        self.page = self.context.new_page()
        self.pages.append(self.page)
        self.page.goto(url)
        self.wait_for_form()

    def open_link(self, url: str, token: str) -> None:
        """Open a mail link as a click would, and check the page took the token out of the address bar."""
        self.goto(url)
        assert self.page is not None
        shown = self.page.evaluate("location.href")
        assert "#" not in shown and "token" not in shown, f"the address bar still shows the token: {shown}"
        assert token not in self.page.url

    def wait_for_form(self) -> None:
        """The page's script has shown its form (a locator wait: a polled JS predicate would need eval,
        which the page's CSP rightly forbids)."""
        assert self.page is not None
        self.page.locator("form:not([hidden])").wait_for(state="visible")

    def heading(self) -> Any:
        assert self.page is not None
        return self.page.get_by_role("heading", level=1)

    def fill(self, label: str, value: str) -> None:
        assert self.page is not None
        self.page.get_by_label(label, exact=True).fill(value)

    def click(self, button: str) -> None:
        assert self.page is not None
        self.page.get_by_role("button", name=button).click()

    def outcome(self, text: str, css_class: str = "ok") -> None:
        assert self.page is not None
        out = self.page.locator("#out")
        expect(out).to_contain_text(text, timeout=15_000)
        expect(out).to_have_class(css_class)

    def check_clean(self, *secrets: str) -> None:
        """No CSP violation, no script error, no secret in any URL a page requested."""
        for page in self.pages:
            violations = page.evaluate("window.__cspViolations")
            assert violations == [], violations
        blocked = [c for c in self.console if "Content Security Policy" in c or "Refused to" in c]
        assert blocked == [], blocked
        assert self.errors == [], self.errors
        for secret in secrets:
            leaked = [u for u in self.requests if secret in u]
            assert leaked == [], f"a request URL carried a secret: {leaked}"


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    # Its own X-Forwarded-For, so the page's POSTs never share a throttle key with another test.
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": new_ip()})
    context.add_init_script(WATCH_CSP)
    opened = Tab(context)
    context.on("console", lambda message: opened.console.append(message.text))
    context.on("weberror", lambda error: opened.errors.append(str(error.error)))
    context.on("request", lambda request: opened.requests.append(request.url))
    try:
        yield opened
    finally:
        context.close()


def _plain_link(message: EmailMessage, path: str) -> str:
    found = re.search(rf"https?://\S+?{re.escape(path)}\b", message_text(message))
    assert found, f"no {path} link in {message['Subject']!r}"
    return found.group(0)


@pytest.mark.policy("P16", "P1")
def test_confirmation_mail_in_a_browser(client: Client, mailbox: Mailbox, tab: Tab) -> None:
    email, password = new_email("browser"), new_password()
    signup(client, email, password)
    message = mailbox.last(email, "confirm your email")
    url, token = link_url(message), link_token(message)
    assert "/auth/verify-email#token=" in url

    tab.open_link(url, token)
    expect(tab.heading()).to_have_text("Confirm your email address")
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401

    wrong = new_password()
    tab.fill("Password chosen at sign-up", wrong)
    tab.click("Confirm my address")
    tab.outcome("not the password chosen", "error")
    assert client.post("/auth/signin", json={"email": email, "password": wrong}).status_code == 401

    tab.fill("Password chosen at sign-up", password)
    tab.click("Confirm my address")
    tab.outcome("Your address is confirmed")
    session = signin(client, email, password)
    assert session.get("/auth/me").json()["email_verified"] is True
    tab.check_clean(token, password, wrong)


@pytest.mark.policy("P16", "P25")
def test_someone_tried_to_register_mail_leads_to_a_reset_in_a_browser(
    client: Client, mailbox: Mailbox, tab: Tab
) -> None:
    email, password = signup_and_verify(client, mailbox)
    squatter = new_password()
    signup(client.clone(ip=new_ip()), email, squatter, "Eve", "Squatter")
    notice = mailbox.last(email, "tried to create an account")
    url = _plain_link(notice, "/auth/reset-password")

    # Opened without a token, the page asks for the address and mails a reset link.
    tab.goto(url)
    expect(tab.heading()).to_have_text("Reset your password")
    tab.fill("Email address", email)
    tab.click("Mail me a link")
    tab.outcome("a message with a link is on its way")
    tab.check_clean(password, squatter)

    reset = mailbox.last(email, "reset your password", timeout=30)
    reset_url, token = link_url(reset), link_token(reset)
    tab.open_link(reset_url, token)
    expect(tab.heading()).to_have_text("Choose a new password")
    new = new_password()
    tab.fill("New password", new)
    tab.click("Set the new password")
    tab.outcome("Your password is changed")
    tab.check_clean(token, new)

    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401
    assert client.post("/auth/signin", json={"email": email, "password": squatter}).status_code == 401
    signin(client, email, new)


@pytest.mark.policy("P25")
def test_reset_mail_of_a_totp_account_in_a_browser(client: Client, mailbox: Mailbox, tab: Tab) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    enrolled = session.post("/auth/mfa/totp/enroll", json={"current_password": password})
    assert enrolled.status_code == 200, enrolled.text
    totp = pyotp.TOTP(enrolled.json()["secret"])
    step = int(time.time()) // 30
    assert session.post("/auth/mfa/totp/activate", json={"code": totp.at(step * 30)}).status_code == 200

    assert client.post("/auth/password/forgot", json={"email": email}).status_code == 202
    reset = mailbox.last(email, "reset your password", timeout=30)
    token = link_token(reset)
    tab.open_link(link_url(reset), token)
    new = new_password()
    tab.fill("New password", new)
    tab.click("Set the new password")
    tab.outcome("Send totp_code or recovery_code", "error")
    assert client.post("/auth/signin", json={"email": email, "password": new}).status_code == 401

    tab.fill("Two-step verification code (only if it is on)", totp.at((step + 1) * 30))
    tab.click("Set the new password")
    tab.outcome("Your password is changed")
    tab.check_clean(token, new)
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401


@pytest.mark.policy("P15", "P25")
def test_email_change_mail_in_a_browser(client: Client, mailbox: Mailbox, tab: Tab) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    moved = new_email("moved")
    asked = session.patch("/auth/me", json={"email": moved, "current_password": password})
    assert asked.status_code == 200, asked.text
    change = mailbox.last(moved, "confirm your new email")
    url, token = link_url(change), link_token(change)
    assert "/auth/confirm-email-change#token=" in url

    tab.open_link(url, token)
    expect(tab.heading()).to_have_text("Confirm your new email address")
    assert session.get("/auth/me").json()["email"] == email, "opening the page changed the login"
    tab.click("Use this address")
    tab.outcome("this address is now your login")
    tab.check_clean(token)

    me: dict[str, Any] = session.get("/auth/me").json()
    assert me["email"] == moved and me["pending_email"] is None
    signin(client, moved, password)
