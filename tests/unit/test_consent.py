"""Marketing consent (P18): the use cases on the in-memory store, the unsubscribe tokens, the mailer's
gate, the one-click headers, the consent sync and the monthly digest, all without emulators."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.mailer import main as mailer
from shared.adapters.mail import Mail, OutboxMail, OutboxMailer, SmtpMailer
from shared.config import Settings
from shared.consent.digest import MarketingDigest
from shared.consent.gate import MarketingGate
from shared.consent.memory import MemoryConsentStore
from shared.consent.service import ConsentService
from shared.consent.sync import ConsentSyncer, ConsentSyncIncomplete, ConsentSyncJob
from shared.consent.tokens import UnsubscribeTokens
from shared.errors import InvalidInput, InvalidToken
from shared.processors import StepOutcome, Subject
from tests.unit.test_mailer import MemoryStore

pytestmark = pytest.mark.policy("P18")

KEY = secrets.token_bytes(32)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class FakeAccount:
    id: str
    email: str
    first_name: str = "Ada"
    status: str = "active"
    objection: dict[str, Any] | None = None


@dataclass
class FakeAccounts:
    accounts: dict[str, FakeAccount] = field(default_factory=dict)

    def add(self, **kw: Any) -> FakeAccount:
        account = FakeAccount(id=secrets.token_hex(8), email=f"{secrets.token_hex(4)}@example.com", **kw)
        self.accounts[account.id] = account
        return account

    def get(self, account_id: str) -> FakeAccount | None:
        return self.accounts.get(account_id)


def service(store: MemoryConsentStore | None = None) -> tuple[ConsentService, list[tuple[str, dict]]]:
    published: list[tuple[str, dict]] = []
    svc = ConsentService(
        store or MemoryConsentStore(),
        publish=lambda topic, payload: published.append((topic, payload)),
        tokens=lambda: UnsubscribeTokens(KEY),
        clock=Clock(),
    )
    return svc, published


def settings() -> Settings:
    return Settings(
        project_id="demo-unit",
        app_env="local",
        public_base_url="https://api.example.test",
        app_url="https://app.example.test",
        password_pepper=b"p" * 32,
        totp_encryption_key=b"k" * 32,
        unsubscribe_signing_key=KEY,
    )


# --- the use cases on the in-memory store -------------------------------------------------------------


def test_no_record_is_no_consent() -> None:
    svc, published = service()
    assert svc.current("acc1") == {"marketing": False, "changed_at": None, "source": None}
    assert svc.history("acc1") == []
    assert published == []


def test_every_change_is_kept_with_when_what_source_and_actor() -> None:
    store = MemoryConsentStore()
    svc, published = service(store)
    on = svc.change("acc1", True, "settings", actor="acc1")
    off = svc.change("acc1", False, "support", actor="staff9")
    assert on["marketing"] is True and on["source"] == "settings"
    assert off == svc.current("acc1") and off["marketing"] is False and off["source"] == "support"
    history = svc.history("acc1")
    assert [(h["marketing"], h["source"], h["by"]) for h in history] == [
        (True, "settings", "holder"),
        (False, "support", "staff"),
    ]
    assert history[0]["at"] < history[1]["at"]
    assert [c.actor for c in store.history("acc1")] == ["acc1", "staff9"]
    assert published == [("consent-sync", {"account_id": "acc1"})] * 2


def test_signup_without_the_box_ticked_is_recorded_and_queues_nothing() -> None:
    svc, published = service()
    assert svc.change("acc2", False, "signup")["marketing"] is False
    assert [h["source"] for h in svc.history("acc2")] == ["signup"]
    assert published == []
    svc.change("acc3", True, "signup")
    assert published == [("consent-sync", {"account_id": "acc3"})]


def test_unknown_source_or_account_id_is_refused() -> None:
    svc, _ = service()
    with pytest.raises(InvalidInput):
        svc.change("acc1", True, "newsletter-form")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        svc.change("../accounts/x", True, "settings")


def test_consenting_lists_only_current_yes() -> None:
    store = MemoryConsentStore()
    svc, _ = service(store)
    svc.change("a", True, "settings", actor="a")
    svc.change("b", True, "settings", actor="b")
    svc.change("b", False, "settings", actor="b")
    assert list(store.consenting()) == ["a"]
    store.forget("a")
    assert list(store.consenting()) == [] and store.history("a") == []


# --- unsubscribe tokens -------------------------------------------------------------------------------


def test_unsubscribe_token_names_only_its_account_and_is_idempotent() -> None:
    svc, _ = service()
    svc.change("acc1", True, "settings", actor="acc1")
    svc.change("acc2", True, "settings", actor="acc2")
    token = UnsubscribeTokens(KEY).issue("acc1")
    assert svc.unsubscribe(token)["marketing"] is False
    assert svc.unsubscribe(token)["source"] == "unsubscribe-link"  # again: still no, nothing else
    assert svc.current("acc2")["marketing"] is True
    assert [h["by"] for h in svc.history("acc1")][-1] == "link"


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("acc1", "acc2"),  # another account, same MAC
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # altered MAC
        lambda t: UnsubscribeTokens(secrets.token_bytes(32)).issue("acc1"),  # another key
        lambda t: "v1.acc1.",
        lambda t: "v2" + t[2:],
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_forged_tokens_are_refused(forge: Any) -> None:
    svc, _ = service()
    with pytest.raises(InvalidToken):
        svc.unsubscribe(forge(UnsubscribeTokens(KEY).issue("acc1")))
    assert svc.history("acc1") == [] and svc.history("acc2") == []


# --- the mailer's gate --------------------------------------------------------------------------------


def gate_and_mailer() -> tuple[ConsentService, FakeAccounts, MemoryStore, list[Mail], Any]:
    svc, _ = service()
    accounts = FakeAccounts()
    gate = MarketingGate(svc.store, accounts, UnsubscribeTokens(KEY), "https://api.example.test")
    sent: list[Mail] = []

    class Smtp:
        def send(self, mail: Mail) -> None:
            SmtpMailer(settings()).build(mail)  # the real message is built: marketing without a link fails
            sent.append(mail)

    store = MemoryStore()

    def deliver(mail: Mail) -> bool:
        payload = OutboxMail(
            id=secrets.token_hex(8), **{k: v for k, v in mail.__dict__.items() if k != "unsubscribe_url"}
        )
        return mailer.deliver(payload, store=store, smtp=Smtp(), gate=lambda: gate)

    return svc, accounts, store, sent, deliver


def test_marketing_needs_consent_no_objection_and_an_active_account() -> None:
    svc, accounts, _, sent, deliver = gate_and_mailer()
    ok = accounts.add()
    never = accounts.add()
    objected = accounts.add(objection={"marketing": True, "at": "2026-01-01"})
    cancelled = accounts.add(status="cancelled")
    for account in (ok, objected, cancelled):
        svc.change(account.id, True, "settings", actor=account.id)

    def marketing(account: FakeAccount | None) -> Mail:
        return Mail(
            to="x@example.com",
            subject="Tips",
            text="t",
            category="marketing",
            account_id=account.id if account else None,
        )

    assert deliver(marketing(ok)) is True
    assert [deliver(marketing(a)) for a in (never, objected, cancelled, None)] == [False] * 4
    assert len(sent) == 1 and sent[0].unsubscribe_url
    svc.change(ok.id, False, "settings", actor=ok.id)
    assert deliver(marketing(ok)) is False  # consent is read at send time
    # transactional mail is always sent, whatever the consent
    assert deliver(Mail(to="x@example.com", subject="Reset", text="t", account_id=never.id)) is True
    assert deliver(Mail(to="x@example.com", subject="Cancelled", text="t", category="privacy")) is True


def test_marketing_without_a_gate_is_never_sent() -> None:
    payload = OutboxMail(id="m1", to="x@example.com", subject="Tips", text="t", category="marketing", account_id="a")
    sent: list[Mail] = []
    store = MemoryStore()

    class Smtp:
        def send(self, mail: Mail) -> None:
            sent.append(mail)

    assert mailer.deliver(payload, store=store, smtp=Smtp()) is False
    assert sent == []


def test_a_marketing_message_carries_one_click_unsubscribe() -> None:
    token = UnsubscribeTokens(KEY).issue("acc1")
    url = f"https://api.example.test/privacy/unsubscribe/{token}"
    mail = Mail(to="x@example.com", subject="Tips", text="Hello", category="marketing", account_id="acc1")
    message = SmtpMailer(settings()).build(Mail(**{**mail.__dict__, "unsubscribe_url": url}))
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.get_content()
    assert "?" not in url
    with pytest.raises(ValueError):
        SmtpMailer(settings()).build(mail)  # never without its link
    transactional = SmtpMailer(settings()).build(Mail(to="x@example.com", subject="Reset", text="t"))
    assert transactional["List-Unsubscribe"] is None


def test_the_outbox_carries_the_account_but_never_a_caller_made_link() -> None:
    queued: list[dict[str, Any]] = []
    outbox = OutboxMailer(settings(), publish=lambda topic, payload, attrs: queued.append(payload) or "1")
    outbox.send(
        Mail(
            to="x@example.com",
            subject="Tips",
            text="t",
            category="marketing",
            account_id="acc1",
            unsubscribe_url="https://evil.example/",
        )
    )
    assert queued[0]["account_id"] == "acc1" and "unsubscribe_url" not in queued[0]


# --- consent sync ---------------------------------------------------------------------------------------


@dataclass
class FakeProcessor:
    name: str
    outcomes: list[StepOutcome]
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome:
        self.calls.append((subject.email, marketing))
        return self.outcomes.pop(0) if self.outcomes else StepOutcome("done")


def test_sync_sends_the_current_answer_retries_and_skips_unconfigured() -> None:
    svc, _ = service()
    accounts = FakeAccounts()
    account = accounts.add()
    svc.change(account.id, True, "settings", actor=account.id)
    hubspot = FakeProcessor("HubSpot", [StepOutcome("retry", "HTTP 503")])
    intercom = FakeProcessor("Intercom", [StepOutcome("failed", "not configured: INTERCOM_TOKEN not set")] * 2)
    syncer = ConsentSyncer(svc.store, accounts, lambda: [hubspot, intercom])
    job = ConsentSyncJob(account_id=account.id)
    with pytest.raises(ConsentSyncIncomplete):
        syncer.handle(job)  # HubSpot asked to retry: the push fails and Pub/Sub redelivers
    assert syncer.handle(job) == {"HubSpot": "done", "Intercom": "skipped"}
    assert hubspot.calls == [(account.email, True)] * 2
    svc.change(account.id, False, "unsubscribe-link")
    syncer.handle(job)
    assert hubspot.calls[-1] == (account.email, False)
    account.status = "cancelled"
    svc.change(account.id, True, "support", actor="staff")
    syncer.handle(job)
    assert hubspot.calls[-1] == (account.email, False)  # a cancelled account is not marketed to
    assert syncer.handle(ConsentSyncJob(account_id="gone")) == {}


# --- the monthly digest ---------------------------------------------------------------------------------


def test_digest_goes_once_a_month_to_consenting_active_accounts() -> None:
    svc, _ = service()
    accounts = FakeAccounts()
    yes, no, cancelled = accounts.add(), accounts.add(), accounts.add(status="cancelled")
    svc.change(yes.id, True, "settings", actor=yes.id)
    svc.change(cancelled.id, True, "settings", actor=cancelled.id)
    queued: list[Mail] = []

    class Outbox:
        def send(self, mail: Mail) -> None:
            queued.append(mail)

    clock = Clock()
    digest = MarketingDigest(svc.store, accounts, Outbox(), IdemAdapter(), clock)
    assert digest.run() == {"sent": 1, "already_sent": 0, "not_eligible": 1, "failed": 0}
    assert digest.run()["sent"] == 0
    assert [(m.account_id, m.category) for m in queued] == [(yes.id, "marketing")]
    clock.now += timedelta(days=31)
    assert digest.run()["sent"] == 1
    assert no.id not in {m.account_id for m in queued}


class IdemAdapter(MemoryStore):
    """The test store of the mailer, with the keyword arguments IdempotencyStore takes."""

    def claim(self, key: str, *, scope: str = "", **_: Any) -> Any:
        return super().claim(key, scope=scope)

    def complete(self, claim: Any, result: dict[str, Any] | None = None, **_: Any) -> bool:
        return super().complete(claim, result)
