"""Helpers of the data subject request tests: seed an account in every place of the data map, fake
processor adapters with a script of answers, and read every place back from the emulators.

Seeding and checking both iterate `shared/datamap.py`, so a place another issue declares later is
seeded and checked by these tests without touching them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import datamap
from shared.adapters import storage as gcs
from shared.adapters.mail import Mail
from shared.config import Settings
from shared.errors import DomainError
from shared.http.errors import problem_for
from shared.http.problems import Problem
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS, SESSIONS, Account, Principal, SessionRecord
from shared.identity.tokens import email_key, new_id, new_token, token_hash
from shared.processors import ProcessorError, StepOutcome, Subject

PROCESSOR_NAMES = tuple(p.name for p in datamap.PROCESSORS)
SEED_IP = "198.51.100.77"

# What a use case refuses with: a domain error (services) or, from code not yet converted, a Problem.
REFUSED = (DomainError, Problem)


def refusal(error: BaseException) -> Problem:
    """The HTTP answer a refusal gets (status, slug, title, detail), whichever kind was raised."""
    if isinstance(error, DomainError):
        return problem_for(error)
    assert isinstance(error, Problem), error
    return error


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.sent if m.to == address]


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Sleeper:
    """A `sleep` that moves the clock instead of waiting (records each wait)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.clock.advance(seconds=seconds)


class Killed(BaseException):
    """Stands for the worker process dying mid-step (nothing in the worker catches a BaseException)."""


@dataclass
class FakeAdapter:
    """A processor adapter answering from a script (a StepOutcome or an exception per call, then `then`)."""

    name: str
    script: list[Any] = field(default_factory=list)
    then: StepOutcome = field(default_factory=lambda: StepOutcome("done", "deleted"))
    holds: dict[str, Any] = field(default_factory=lambda: {"found": True, "contact": {"plan": "pro"}})
    erase_calls: list[Subject] = field(default_factory=list)
    export_calls: list[Subject] = field(default_factory=list)
    clock: Any = None
    called_at: list[datetime] = field(default_factory=list)

    def erase(self, subject: Subject) -> StepOutcome:
        self.erase_calls.append(subject)
        if self.clock is not None:
            self.called_at.append(self.clock())
        answer = self.script.pop(0) if self.script else self.then
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def export(self, subject: Subject) -> dict[str, Any]:
        self.export_calls.append(subject)
        answer = self.script.pop(0) if self.script else None
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, StepOutcome) and not answer.succeeded:
            raise ProcessorError(answer)
        return dict(self.holds, processor=self.name)


def fake_adapters(**scripts: list[Any]) -> list[FakeAdapter]:
    return [FakeAdapter(name, list(scripts.get(name, []))) for name in PROCESSOR_NAMES]


def settings(**overrides: Any) -> Settings:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


def db_for(config: Settings) -> firestore.Client:
    return firestore.Client(project=config.project_id)


def storage_for(config: Settings) -> Any:
    return gcs.storage_client(config.project_id)


@dataclass
class Seeded:
    account: Account
    session: SessionRecord
    token: str  # the session's bearer token
    places: list[str]
    objects: list[tuple[str, str, bytes]]  # (bucket, name, content)

    @property
    def principal(self) -> Principal:
        return Principal(account=self.account, session=self.session)


def seed_account(
    db: firestore.Client,
    storage: Any,
    config: Settings,
    *,
    files: Iterable[tuple[str, bytes]] = (("report.pdf", b"%PDF-1.7 report"), ("photos/site 1.jpg", b"\xff\xd8jpeg")),
    roles: list[str] | None = None,
    now: datetime | None = None,
    undeclared_subcollection: bool = False,
) -> Seeded:
    """An account with data in every place the data map says is erased or exported."""
    now = now or datetime.now(UTC)
    account = Account(
        id=new_id("acc"),
        email=f"seed.{secrets.token_hex(5)}@example.com",
        first_name="Ada",
        last_name=f"Seeded{secrets.token_hex(3)}",
        created_at=now,
        email_verified=True,
        firebase_uid=f"uid{secrets.token_hex(6)}",
        password_hash="$2b$04$notarealhashnotarealhashnotarealhashnotarealhashnotare",
        roles=roles or [],
        billing_contact={"name": "Ada Lovelace", "country": "FR"},
    )
    token = new_token()
    session = SessionRecord(
        id=new_id("ses"),
        account_id=account.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=12),
        ip=SEED_IP,
        user_agent="Seed/1.0",
        method="password",
        authenticated_at=now,
    )
    db.collection(ACCOUNTS).document(account.id).set(account.to_doc())
    db.collection(ACCOUNT_EMAILS).document(email_key(account.email)).set({"account_id": account.id, "created_at": now})
    db.collection(SESSIONS).document(session.token_hash).set(session.to_doc())
    places = [ACCOUNTS, ACCOUNT_EMAILS, SESSIONS]
    if undeclared_subcollection:
        # Under the account document, undeclared: erased with it all the same. Only for tests that erase
        # the account (the after-suite check fails on an undeclared collection that outlives the test).
        db.collection(ACCOUNTS).document(account.id).collection("notes").document("n1").set({"text": "hello"})
    for place in datamap.FIRESTORE:
        if place.collection in places or place.erasure in ("expire", "keep"):
            continue
        doc = {"seeded": True, "ip": SEED_IP, "at": now, "expires_at": now + timedelta(days=1)}
        if place.account_field is None:
            ref = db.collection(place.collection).document(account.id)
        elif place.group:
            ref = db.collection(ACCOUNTS).document(account.id).collection(place.collection).document()
            doc[place.account_field] = account.id
        else:
            ref = db.collection(place.collection).document()
            doc[place.account_field] = account.id
        if place.collection == "privacy_requests":
            doc.update(id=ref.id, type="export", status="completed", received_at=now, due_at=now)
        ref.set(doc)
        places.append(place.collection)
    objects: list[tuple[str, str, bytes]] = []
    for place in datamap.STORAGE:
        bucket_name = getattr(config, place.bucket_setting.lower())
        handle = gcs.bucket(storage, bucket_name)
        prefix = place.prefix.format(account_id=account.id)
        if place.bucket_setting == "BUSINESS_DATA_BUCKET":
            seeds = list(files)
        elif place.bucket_setting == "EXPORTS_BUCKET":
            seeds = [("old-export.zip", b"PK\x05\x06" + b"\0" * 18)]
        else:  # another issue's place: one small object shaped like its own (newline-delimited JSON by day)
            line = json.dumps({"account_id": account.id, "event": "seed"}).encode() + b"\n"
            seeds = [(f"dt={now:%Y-%m-%d}/seed{secrets.token_hex(4)}.ndjson", line)]
        for name, content in seeds:
            handle.blob(prefix + name).upload_from_string(content)
            objects.append((bucket_name, prefix + name, content))
    return Seeded(account, session, token, places, objects)


def remaining(db: firestore.Client, storage: Any, config: Settings, account_id: str) -> dict[str, int]:
    """What is left of the account in every erased place, read straight from the emulators."""
    left: dict[str, int] = {}
    for place in datamap.FIRESTORE:
        if place.erasure in ("expire", "keep"):
            continue
        if place.account_field is None:
            count = int(db.collection(place.collection).document(account_id).get().exists)
            if place.collection == ACCOUNTS:
                count += len(list(db.collection(ACCOUNTS).document(account_id).collections()))
        else:
            base = db.collection_group(place.collection) if place.group else db.collection(place.collection)
            count = len(list(base.where(filter=FieldFilter(place.account_field, "==", account_id)).stream()))
        left[f"firestore:{place.collection}"] = count
    for place in datamap.STORAGE:
        handle = gcs.bucket(storage, getattr(config, place.bucket_setting.lower()))
        prefix = place.prefix.format(account_id=account_id)
        count = len(list(gcs.list_names(handle, prefix)))
        # A soft-deleted object can be restored: it is not erased (P11).
        count += len(list(storage.list_blobs(handle, prefix=prefix, soft_deleted=True)))
        left[f"storage:{place.bucket_setting}"] = count
    return left
