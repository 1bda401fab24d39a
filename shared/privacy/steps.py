"""The steps of privacy requests (P11, P26, P27, P28): one handler per step kind, in one registry.

A step's name is `<kind>` or `<kind>:<argument>` (shared/privacy/model.py); `HANDLERS` maps the plan it
belongs to (erasure, export) and its kind to the method that runs it, given the request and the argument.
Adding a step kind is one entry in the table (and one in the plan, `step_plan`).

Erasure (an erasure asked by the holder or the DPO, or started by the retention sweep): `sessions` (the
account stops working and every session ends: first), `processor:<name>` (its adapter's erasure),
`firestore:<collection>` and `storage:<BUCKET_SETTING>` (the data map's places), `account` (the email
index, then the account document and everything under it), `notify`.

Export: `processor:<name>` (its adapter's export, staged in the exports bucket), `archive` (the ZIP,
streamed), `notify`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import datamap
from shared.adapters import storage as gcs
from shared.adapters.mail import Mailer
from shared.billing.model import BILLING_ACCOUNTS, BillingState
from shared.config import Settings
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS, SESSIONS, Account
from shared.identity.stores import AccountStore
from shared.privacy import export as archive
from shared.privacy import mails
from shared.privacy.model import (
    ACCOUNT_STEP,
    ARCHIVE_STEP,
    DONE,
    ERASURE,
    EXPORT,
    FAILED,
    FIRESTORE,
    NOT_FOUND,
    NOTIFY_STEP,
    PRIVACY_REQUESTS,
    PROCESSOR,
    REQUESTED_BY_DPO,
    SESSIONS_STEP,
    SKIPPED,
    STORAGE,
    PrivacyRequest,
    Step,
    plan_family,
    processor_step,
    step_kind,
)
from shared.privacy.places import (
    Outcome,
    delete_documents,
    erase_firestore_place,
    erase_storage_place,
)
from shared.processors import ProcessorAdapter, ProcessorError, Subject

Clock = Callable[[], datetime]


class StepHandlers:
    """What each step does, over the stores, buckets, processors and mailer it is given."""

    def __init__(
        self,
        *,
        db: firestore.Client,
        settings: Settings,
        storage: Any,
        adapters: Callable[[], Sequence[ProcessorAdapter]],
        mailer: Mailer,
        accounts: AccountStore,
        clock: Clock,
    ) -> None:
        self.db = db
        self.settings = settings
        self.storage = storage
        self.accounts = accounts  # the account is read and disabled through the identity store
        self.mailer = mailer
        self.clock = clock
        self._adapters = adapters
        self._adapter_list: Sequence[ProcessorAdapter] | None = None

    @property
    def adapters(self) -> Sequence[ProcessorAdapter]:
        if self._adapter_list is None:
            self._adapter_list = list(self._adapters())
        return self._adapter_list

    def adapter(self, name: str) -> ProcessorAdapter | None:
        return next((a for a in self.adapters if a.name == name), None)

    def execute(self, request: PrivacyRequest, step: Step) -> Outcome:
        """Run one step with the handler its plan and kind name in `HANDLERS`."""
        kind, argument = step_kind(step.name)
        handler = HANDLERS.get((plan_family(request.type), kind))
        if handler is None:
            return Outcome(FAILED, f"unknown step {step.name}")
        return handler(self, request, argument)

    # -- erasure steps ----------------------------------------------------------------------------
    def account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def subject_of(self, account: Account) -> dict[str, Any]:
        """The identifiers every step erases by, kept on the request before the account goes. The Stripe
        customer is the one billing linked: `billing_accounts/{account_id}.customer_id` (BillingState)."""
        billing = self.db.collection(BILLING_ACCOUNTS).document(account.id).get()
        customer = BillingState.from_doc(account.id, billing.to_dict() if billing.exists else None).customer_id
        return {
            "account_id": account.id,
            "email": account.email,
            "first_name": account.first_name,
            "firebase_uid": account.firebase_uid,
            "stripe_customer_id": customer if isinstance(customer, str) else None,
        }

    def end_sessions(self, request: PrivacyRequest, _: str) -> Outcome:
        """First step: the account stops working (no sign-in, no session) and every session ends."""
        account = self.account(request.account_id)
        changes: dict[str, Any] = {}
        if account is not None:
            if request.subject is None:
                changes["subject"] = self.subject_of(account)
                request.subject = changes["subject"]
            if account.status != "erasing":
                self.accounts.update(account.id, {"status": "erasing"})
        ended = delete_documents(self.db, SESSIONS, "account_id", request.account_id)
        # The holder asked for theirs (and was mailed then); a retention erasure mails only at its end.
        if account is not None and request.subject and request.requested_by == REQUESTED_BY_DPO:
            subject = request.subject
            self.mailer.send(mails.erasure_started(subject["email"], subject.get("first_name") or "", request.id, True))
        detail = f"account disabled, {ended} sessions ended" if account else f"{ended} sessions ended"
        return Outcome(DONE, detail, changes=changes)

    def subject(self, request: PrivacyRequest) -> Subject | None:
        data = request.subject
        if not data or not data.get("email"):
            return None
        return Subject(
            account_id=request.account_id,
            email=str(data["email"]),
            firebase_uid=data.get("firebase_uid"),
            stripe_customer_id=data.get("stripe_customer_id"),
        )

    def erase_processor(self, request: PrivacyRequest, name: str) -> Outcome:
        adapter = self.adapter(name)
        if adapter is None:
            return Outcome(FAILED, "no adapter for this processor")
        subject = self.subject(request)
        if subject is None:
            return Outcome(FAILED, "the account was gone before the request ran: no identifier to erase by")
        result = adapter.erase(subject)
        return Outcome(result.status, result.detail, retry_after=result.retry_after)

    def delete_account(self, request: PrivacyRequest, _: str) -> Outcome:
        """The email index first (so the address can register again), then the account and all under it."""
        indexes = delete_documents(self.db, ACCOUNT_EMAILS, "account_id", request.account_id)
        place = datamap.firestore_place(ACCOUNTS)
        outcome = erase_firestore_place(self.db, place, request.account_id)
        if outcome.status == NOT_FOUND and indexes == 0:
            return Outcome(NOT_FOUND, "account already gone")
        return Outcome(outcome.status, f"{indexes} email index entries; {outcome.detail}", outcome.retry_after)

    def notify_erasure(self, request: PrivacyRequest, _: str) -> Outcome:
        data = request.subject or {}
        if not data.get("email"):
            return Outcome(SKIPPED, "no address to notify")
        first_name = str(data.get("first_name") or "")
        backups = self.settings.backup_window_days
        self.mailer.send(mails.erasure_completed(str(data["email"]), first_name, request.id, backups))
        return Outcome(DONE, "completion mail sent")

    # -- export steps ------------------------------------------------------------------------------
    def export_subject(self, request: PrivacyRequest) -> tuple[Subject, Account] | None:
        account = self.account(request.account_id)
        if account is None:
            return None
        data = self.subject_of(account)
        subject = Subject(
            account.id, account.email, account.firebase_uid, stripe_customer_id=data.get("stripe_customer_id")
        )
        return subject, account

    def export_processor(self, request: PrivacyRequest, name: str) -> Outcome:
        adapter = self.adapter(name)
        if adapter is None:
            return Outcome(FAILED, "no adapter for this processor")
        found = self.export_subject(request)
        if found is None:
            return Outcome(FAILED, "account not found")
        try:
            held = adapter.export(found[0])
        except ProcessorError as exc:
            return Outcome(exc.outcome.status, exc.outcome.detail, retry_after=exc.outcome.retry_after)
        blob = gcs.bucket(self.storage, self.settings.exports_bucket).blob(
            f"{archive.staging_prefix(request.account_id, request.id)}{adapter.name}.json"
        )
        blob.upload_from_string(archive.dumps(held), content_type="application/json")
        # An erasure may have run while the processor answered, emptying the exports bucket before this
        # upload: what was just written must not outlive it. (It began by marking the account, so a check
        # after the upload sees it whenever the erasure's own delete could have run before the upload.)
        if self.erasing(request.account_id):
            with contextlib.suppress(gexc.NotFound):
                blob.delete()
            return Outcome(FAILED, "the account is being erased: what the processor held was not kept")
        return Outcome(DONE, "held data collected" if held.get("found", True) else "holds nothing")

    def erasing(self, account_id: str) -> bool:
        status = self.accounts.status(account_id)
        return status is None or status == "erasing"

    def build_archive(self, request: PrivacyRequest, _: str) -> Outcome:
        handle = gcs.bucket(self.storage, self.settings.exports_bucket)
        staging = archive.staging_prefix(request.account_id, request.id)
        if self.erasing(request.account_id):
            gcs.delete_prefix(handle, staging)
            return Outcome(FAILED, "the account is being erased: no export is built")

        def loader(name: str) -> Callable[[], dict[str, Any]]:
            def load() -> dict[str, Any]:
                step = request.steps.get(processor_step(name))
                blob = handle.blob(f"{staging}{name}.json")
                if step is None or step.status != DONE or not blob.exists():
                    detail = step.last_error if step else "not asked"
                    return {"found": None, "error": f"could not be obtained: {detail}"}
                return dict(json.loads(blob.download_as_bytes()))

            return load

        now = self.clock()
        result = archive.write_archive(
            db=self.db,
            client=self.storage,
            settings=self.settings,
            account_id=request.account_id,
            request_id=request.id,
            processors=[(a.name, loader(a.name)) for a in self.adapters],
            generated_at=now,
        )
        gcs.delete_prefix(handle, staging)
        if self.erasing(request.account_id):  # an erasure started meanwhile: it may have run past the exports
            with contextlib.suppress(gexc.NotFound):
                handle.blob(result["object"]).delete()
            return Outcome(FAILED, "the account is being erased: the export was deleted")
        expires = now + timedelta(days=self.settings.export_retention_days)
        export = {**result, "created_at": now, "expires_at": expires}
        request.export = export
        return Outcome(
            DONE, f"{result['files']} files, {len(result['categories'])} categories", changes={"export": export}
        )

    def notify_export(self, request: PrivacyRequest, _: str) -> Outcome:
        account = self.account(request.account_id)
        if account is None or not request.export:
            return Outcome(SKIPPED, "nothing to announce")
        self.mailer.send(
            mails.export_ready(
                account.email,
                account.first_name,
                self.settings.public_base_url,
                request.id,
                request.export["expires_at"],
            )
        )
        return Outcome(DONE, "ready mail sent")

    # -- the data map's places ---------------------------------------------------------------------
    def erase_firestore(self, request: PrivacyRequest, collection: str) -> Outcome:
        place = datamap.firestore_place(collection)
        # The running request keeps its own document until its deletion record is written.
        keep = frozenset({request.id}) if place.collection == PRIVACY_REQUESTS else frozenset()
        return erase_firestore_place(self.db, place, request.account_id, keep)

    def erase_storage(self, request: PrivacyRequest, setting: str) -> Outcome:
        place = next((p for p in datamap.STORAGE if p.bucket_setting == setting), None)
        if place is None:
            return Outcome(FAILED, f"no storage place {setting} in the data map")
        return erase_storage_place(self.storage, self.settings, place, request.account_id)


Handler = Callable[[StepHandlers, PrivacyRequest, str], Outcome]

# (plan, step kind) -> handler. The plan of a retention request is the erasure's (`plan_family`).
HANDLERS: dict[tuple[str, str], Handler] = {
    (ERASURE, SESSIONS_STEP): StepHandlers.end_sessions,
    (ERASURE, PROCESSOR): StepHandlers.erase_processor,
    (ERASURE, FIRESTORE): StepHandlers.erase_firestore,
    (ERASURE, STORAGE): StepHandlers.erase_storage,
    (ERASURE, ACCOUNT_STEP): StepHandlers.delete_account,
    (ERASURE, NOTIFY_STEP): StepHandlers.notify_erasure,
    (EXPORT, PROCESSOR): StepHandlers.export_processor,
    (EXPORT, ARCHIVE_STEP): StepHandlers.build_archive,
    (EXPORT, NOTIFY_STEP): StepHandlers.notify_export,
}
