"""Data subject requests (P10, P11, P20, P26, P27, P28): the use cases of the privacy and admin functions.

The account holder asks for an export or an erasure, objects to marketing and analytics (answered at
once), follows each request step by step, cancels an erasure in its grace period, downloads the export,
and reads what staff did with the account (the audit log). The retention sweep starts erasures too.
Staff (DPO, admin) start an immediate erasure, see every open request by due date, retry a request
that needs attention, read the deletion records and the record of processing, and grant roles.
Every request of another account answers 404 (P20). The work itself runs in the privacy worker.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters import storage as gcs
from shared.adapters.mail import Mailer
from shared.audit import AuditLog
from shared.config import Settings
from shared.errors import Conflict, Gone, InvalidInput, InvalidToken, NotFound
from shared.identity.model import ADMIN, STAFF_ROLES, Account, Principal
from shared.identity.reauth import Proof
from shared.identity.service import IdentityService
from shared.identity.stores import AccountStore
from shared.identity.tokens import new_id, new_token, token_hash
from shared.observability import get_logger
from shared.privacy import mails
from shared.privacy.model import (
    CANCELLED,
    COMPLETED,
    DELETION_RECORDS,
    ERASURE,
    ERASURE_TYPES,
    EXPORT,
    HOLDER_TYPES,
    NEEDS_ATTENTION,
    OBJECTION,
    OPEN_STATUSES,
    PRIVACY_REQUESTS,
    QUEUED,
    REQUESTED_BY_DPO,
    REQUESTED_BY_HOLDER,
    REQUESTED_BY_RETENTION,
    RETENTION,
    SCHEDULED,
    TOPIC,
    PrivacyRequest,
    due_date,
    objection_view,
    step_plan,
)
from shared.processors import ProcessorAdapter

log = get_logger(__name__)
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,79}")  # no slash, no dot, no reserved __name__

Clock = Callable[[], datetime]
Publisher = Callable[[str, dict[str, Any]], None]

SIGNED_URL_LIFETIME = timedelta(minutes=15)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SignedDownload:
    """The export as a short-lived V4 signed URL of its object (production): the route redirects to it."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class ArchiveDownload:
    """The export archive itself, streamed chunk by chunk (local): the route sends it as an attachment."""

    chunks: Iterable[bytes]
    filename: str
    size: int | None
    content_type: str = "application/zip"


Download = SignedDownload | ArchiveDownload


class PrivacyService:
    def __init__(
        self,
        *,
        db: firestore.Client,
        settings: Settings,
        storage: Any,
        identity: Callable[[], IdentityService],
        adapters: Callable[[], list[ProcessorAdapter]],
        mailer: Mailer,
        publish: Publisher,
        audit: AuditLog,
        url_signer: Callable[[], Any],
        accounts: AccountStore,
        clock: Clock = utcnow,
        marketing_stopped: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.accounts = accounts  # every read and write of an account goes through the identity store
        # An objection stops marketing: the processors that send it (HubSpot, Intercom) are told (P18, P26).
        self._marketing_stopped = marketing_stopped
        self.settings = settings
        self.storage = storage
        self._identity = identity
        self._adapters = adapters
        self.mailer = mailer
        self.publish = publish
        self.audit = audit
        self._url_signer = url_signer  # credentials that sign export download URLs (production only)
        self.clock = clock

    # -- documents ----------------------------------------------------------------------------------
    def _ref(self, request_id: str) -> firestore.DocumentReference:
        """The request's document; an id we never issue (a slash, a reserved `__x__` name…) is NotFound."""
        if not REQUEST_ID.fullmatch(request_id or ""):
            raise NotFound("not-found", "No such request.")
        return self.db.collection(PRIVACY_REQUESTS).document(request_id)

    def _load(self, request_id: str) -> PrivacyRequest | None:
        if not REQUEST_ID.fullmatch(request_id or ""):
            return None
        snap = self._ref(request_id).get()
        return PrivacyRequest.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None

    def _owned(self, principal: Principal, request_id: str) -> PrivacyRequest:
        """The caller's own request, or 404: another account's request does not exist for them (P20)."""
        request = self._load(request_id)
        if request is None or not hmac.compare_digest(request.account_id, principal.account.id):
            raise NotFound("not-found", "No such request on this account.")
        return request

    def _open_of(self, account_id: str, kind: str) -> PrivacyRequest | None:
        """The account's open request of this kind; for an erasure, an open erasure or retention request."""
        kinds = list(ERASURE_TYPES) if kind in ERASURE_TYPES else [kind]
        docs = (
            self.db.collection(PRIVACY_REQUESTS)
            .where(filter=FieldFilter("account_id", "==", account_id))
            .where(filter=FieldFilter("type", "in", kinds))
            .stream()
        )
        for snap in docs:
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            if request.open:
                return request
        return None

    def _new_request(
        self, account_id: str, kind: str, *, grace: timedelta, requested_by: str, actor_id: str | None, reason: str
    ) -> tuple[PrivacyRequest, str | None]:
        now = self.clock()
        steps = step_plan(kind, [a.name for a in self._adapters()]) if kind != OBJECTION else []
        token = new_token() if grace > timedelta(0) else None
        request = PrivacyRequest(
            id=new_id("prq"),
            account_id=account_id,
            type=kind,
            status=SCHEDULED if token else QUEUED,
            received_at=now,
            due_at=due_date(now),
            requested_by=requested_by,
            actor_id=actor_id,
            reason=reason,
            run_after=now + grace if token else None,
            cancellable_until=now + grace if token else None,
            cancel_token_hash=token_hash(token) if token else None,
            step_order=[s.name for s in steps],
            steps={s.name: s for s in steps},
            updated_at=now,
        )
        return request, token

    def _enqueue(self, request: PrivacyRequest) -> None:
        """Hand the request to the worker (it checks `run_after` itself; the scheduled check wakes it later)."""
        self.publish(TOPIC, {"kind": "run", "request_id": request.id})

    # -- the account holder ---------------------------------------------------------------------------
    def create_request(
        self, principal: Principal, kind: str, proof: Proof | None, ip: str, user_agent: str, reason: str = ""
    ) -> dict[str, Any]:
        """An export, an erasure or an objection of the caller's account. An erasure first passes the
        identity step-up policy (P25): a current password, a recent Google sign-in, a second-factor code,
        or a step-up made moments ago in the same session; otherwise ReauthenticationRequired (403) or
        Throttled. An objection is answered at once (`_object`)."""
        account = principal.account
        if kind not in HOLDER_TYPES:
            raise InvalidInput("validation-error", "type is export, erasure or objection.")
        if kind == OBJECTION:
            return self._object(account, reason)
        if reason:
            raise InvalidInput("validation-error", "reason is given with an objection only.")
        existing = self._open_of(account.id, kind)
        if existing is not None:
            raise Conflict(
                "request-already-open", f"An {kind} request is already open: {existing.id} ({existing.status})."
            )
        grace = timedelta(0)
        if kind == ERASURE:
            self._identity().step_up.require(principal, proof or Proof(), ip, user_agent)
            grace = timedelta(hours=self.settings.erasure_grace_hours)
        request, token = self._new_request(
            account.id, kind, grace=grace, requested_by=REQUESTED_BY_HOLDER, actor_id=None, reason=""
        )
        self._ref(request.id).create(request.to_doc())
        log.info("privacy request received", request_id=request.id, request_type=kind, account_id=account.id)
        if kind == ERASURE:
            if token:
                self.mailer.send(
                    mails.erasure_scheduled(
                        account.email,
                        account.first_name,
                        self.settings.app_url,
                        request.id,
                        token,
                        request.run_after,
                        request.due_at,
                    )
                )
            else:
                self.mailer.send(mails.erasure_started(account.email, account.first_name, request.id, by_dpo=False))
        self._enqueue(request)
        return self._receipt(request)

    def _object(self, account: Account, reason: str) -> dict[str, Any]:
        """An objection (GDPR Art. 21, P26): recorded, marketing and product analytics stop for the account
        (`account.objection`, honoured by the marketing mails and the telemetry aggregator), answered at
        once with a mail to the holder. Asking again records another request and keeps it stopped."""
        now = self.clock()
        request, _ = self._new_request(
            account.id, OBJECTION, grace=timedelta(0), requested_by=REQUESTED_BY_HOLDER, actor_id=None, reason=reason
        )
        objection = {"marketing": True, "analytics": True, "at": now}
        request.objection = objection
        request.status, request.started_at, request.completed_at = COMPLETED, now, now
        self._ref(request.id).create(request.to_doc())
        self.accounts.update(account.id, {"objection": objection, "updated_at": now})
        if self._marketing_stopped is not None:
            self._marketing_stopped(account.id)
        log.info("privacy objection recorded", request_id=request.id, account_id=account.id)
        self.mailer.send(mails.objection_recorded(account.email, account.first_name, request.id))
        return self._receipt(request)

    def objection_of(self, principal: Principal) -> dict[str, Any] | None:
        """The account's standing objection (what it stopped, since when), or None."""
        account = self.accounts.get(principal.account.id) or principal.account
        return objection_view(getattr(account, "objection", None))

    @staticmethod
    def _receipt(request: PrivacyRequest) -> dict[str, Any]:
        body = request.public()
        return {
            "request_id": request.id,
            "status": request.status,
            "due_at": body["due_at"],
            "type": request.type,
            "scheduled_for": body["scheduled_for"],
            "cancellable_until": body["cancellable_until"],
        }

    def list_requests(self, principal: Principal) -> list[dict[str, Any]]:
        docs = self.db.collection(PRIVACY_REQUESTS).where(filter=FieldFilter("account_id", "==", principal.account.id))
        requests = [PrivacyRequest.from_doc(d.id, d.to_dict() or {}) for d in docs.stream()]
        return [r.public() for r in sorted(requests, key=lambda r: r.received_at, reverse=True)]

    def overview(self, principal: Principal) -> dict[str, Any]:
        """What `GET /privacy/requests` shows: the requests, newest first, and the standing objection (P26)."""
        return {"requests": self.list_requests(principal), "objection": self.objection_of(principal)}

    def get_request(self, principal: Principal, request_id: str) -> dict[str, Any]:
        return self._owned(principal, request_id).public()

    def cancel(self, principal: Principal, request_id: str) -> dict[str, Any]:
        self._owned(principal, request_id)
        return self._cancel(request_id, token=None).public()

    def cancel_with_token(self, request_id: str, token: str) -> PrivacyRequest:
        """The link of the confirmation mail: works without a session (the account may be signed out)."""
        if not token:
            raise InvalidToken("invalid-token", "This link is invalid.")
        return self._cancel(request_id, token=token)

    def _cancel(self, request_id: str, token: str | None) -> PrivacyRequest:
        ref = self._ref(request_id)
        now = self.clock()

        @firestore.transactional
        def cancel(tx: firestore.Transaction) -> PrivacyRequest:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound("not-found", "No such request.")
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            if token is not None and not (
                request.cancel_token_hash and hmac.compare_digest(request.cancel_token_hash, token_hash(token))
            ):
                raise InvalidToken("invalid-token", "This link is invalid or no longer works.")
            if request.status == CANCELLED:
                return request
            if not request.cancellable(now):
                raise Conflict(
                    "not-cancellable", "Only an erasure in its grace period can be cancelled; this one has started."
                )
            tx.update(ref, request.cancel(now))
            return request

        request = cancel(self.db.transaction())
        log.info("privacy request cancelled", request_id=request.id)
        return request

    def download(self, principal: Principal, request_id: str) -> Download:
        """The export archive, for its holder only: streamed, or a short-lived V4 signed URL in production."""
        request = self._owned(principal, request_id)
        export = request.export or {}
        if request.type != EXPORT or not export.get("object"):
            raise Conflict("export-not-ready", "The export is not ready yet; a mail says when it is.")
        expires_at = export.get("expires_at")
        now = self.clock()
        if expires_at is None or expires_at <= now:
            raise Gone("export-expired", "Exports are deleted after 7 days; ask again.", title="Export expired")
        blob = gcs.bucket(self.storage, export.get("bucket") or self.settings.exports_bucket).blob(export["object"])
        filename = f"wizyvision-export-{request.id}.zip"
        if self.settings.export_signed_urls:
            lifetime = min(SIGNED_URL_LIFETIME, expires_at - now)
            url = gcs.signed_download_url(blob, lifetime, filename, self._url_signer())
            return SignedDownload(url=url, expires_at=now + lifetime)
        blob.reload()
        return ArchiveDownload(chunks=gcs.read_chunks(blob), filename=filename, size=blob.size)

    def access_log(self, principal: Principal) -> list[dict[str, Any]]:
        """What staff did with this account (P10): the audit log entries about it."""
        return self.audit.entries_about(principal.account.id)

    # -- staff -----------------------------------------------------------------------------------
    def _account(self, account_id: str) -> Account | None:
        if not account_id or "/" in account_id:
            return None
        return self.accounts.get(account_id)

    def account_id_for(self, email: str) -> str | None:
        """The account of a login address (the email index), for staff tools."""
        account = self.accounts.find_by_email(email)
        return account.id if account is not None else None

    def start_dpo_erasure(self, actor_id: str, account_id: str, reason: str) -> dict[str, Any]:
        """Immediate erasure on request to the DPO (P28): no grace period, the reason is kept."""
        account = self._account(account_id)
        if account is None:
            raise NotFound("not-found", "No such account (it may already be erased: see the deletion records).")
        existing = self._open_of(account_id, ERASURE)
        if existing is not None:
            if existing.status == SCHEDULED:
                self._ref(existing.id).update(existing.start_now_for_dpo(actor_id, reason, self.clock()))
                existing = self._load(existing.id) or existing
                self._enqueue(existing)
            return self._receipt(existing)
        request, _ = self._new_request(
            account_id, ERASURE, grace=timedelta(0), requested_by=REQUESTED_BY_DPO, actor_id=actor_id, reason=reason
        )
        self._ref(request.id).create(request.to_doc())
        log.info("DPO erasure started", request_id=request.id, account_id=account_id, actor_id=actor_id)
        self._enqueue(request)
        return self._receipt(request)

    def start_retention_erasure(self, account_id: str, reason: str) -> dict[str, Any]:
        """The erasure of an account whose retention period is over (P27), for the retention sweep.

        A request of type `retention` running the erasure's steps in the privacy worker (processors,
        every place of the data map, the deletion record, which names the type): no grace period, no
        mail when it starts (the completion mail still goes out), requested_by "retention-sweep".
        Idempotent: while an erasure or retention request is open for the account, that one is returned
        (and nothing is queued again). Returns the receipt: request_id, type, status, due_at, ...
        NotFound when the account does not exist (it may already be erased).
        """
        if self._account(account_id) is None:
            raise NotFound("not-found", "No such account (it may already be erased: see the deletion records).")
        existing = self._open_of(account_id, RETENTION)
        if existing is not None:
            return self._receipt(existing)
        request, _ = self._new_request(
            account_id, RETENTION, grace=timedelta(0), requested_by=REQUESTED_BY_RETENTION, actor_id=None, reason=reason
        )
        self._ref(request.id).create(request.to_doc())
        log.info("retention erasure started", request_id=request.id, account_id=account_id)
        self._enqueue(request)
        return self._receipt(request)

    def open_requests(self) -> list[dict[str, Any]]:
        """Every open request, the nearest due date first (P26: answered well within one month)."""
        docs = self.db.collection(PRIVACY_REQUESTS).where(filter=FieldFilter("status", "in", list(OPEN_STATUSES)))
        requests = [PrivacyRequest.from_doc(d.id, d.to_dict() or {}) for d in docs.stream()]
        return [r.staff_view() for r in sorted(requests, key=lambda r: r.due_at)]

    def retry(self, request_id: str) -> dict[str, Any]:
        """Run the failed steps of a request that needs attention again (every other step stays done)."""
        ref = self._ref(request_id)
        now = self.clock()

        @firestore.transactional
        def reset(tx: firestore.Transaction) -> PrivacyRequest:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound("not-found", "No such open request.")
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            if request.status != NEEDS_ATTENTION:
                raise Conflict("not-retryable", f"The request is {request.status}: only needs_attention is retried.")
            tx.update(ref, request.retry_failed(now))
            return request

        request = reset(self.db.transaction())
        self._enqueue(request)
        return request.staff_view()

    def deletion_record(self, request_id: str) -> dict[str, Any] | None:
        snap = self.db.collection(DELETION_RECORDS).document(request_id).get() if request_id else None
        return snap.to_dict() if snap is not None and snap.exists else None

    def deletion_records(self, limit: int = 200) -> list[dict[str, Any]]:
        docs = (
            self.db.collection(DELETION_RECORDS)
            .order_by("completed_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .stream()
        )
        return [d.to_dict() or {} for d in docs]

    def set_roles(
        self,
        actor_id: str,
        account_id: str,
        roles: list[str] | None,
        reason: str,
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Set (`roles`), grant (`add`) or withdraw (`remove`) staff roles (P10, P28, P29): only an admin
        (or the CLI) does this. An account is never left without any admin."""
        unknown = [r for r in (*(roles or []), *add, *remove) if r not in STAFF_ROLES]
        if unknown:
            raise InvalidInput("unknown-role", f"Roles are {', '.join(sorted(STAFF_ROLES))}.", title="Unknown role")

        def wanted(before: list[str]) -> list[str]:
            base = set(before if roles is None else roles)
            return sorted((base | set(add)) - set(remove))

        # One transaction: two admins withdrawing each other's role at once cannot both pass (last-admin).
        before, wanted_roles = self.accounts.change_roles(account_id, wanted, ADMIN, self.clock())
        log.info("staff roles changed", account_id=account_id, actor_id=actor_id, roles=wanted_roles)
        return {"account_id": account_id, "roles": wanted_roles, "previous_roles": before, "reason": reason}

    def audit_admin_call(self, request: Any, route: Any, body: Any, problem: Any | None) -> None:
        """Write one admin call to the audit log (P10, P28), allowed or refused, before anything happens.

        The action is the route ("POST /admin/privacy/erasures"); the target account comes from the
        path or the body, the reason from the body. If the entry cannot be written, the call fails.
        `problem` is the HTTP edge's refusal (anything with `status` and `slug`), or None.
        """
        account = request.principal.account
        params = dict(request.path_params)
        target = params.pop("account_id", None) or getattr(body, "account_id", None)
        details: dict[str, Any] = {"outcome": "refused" if problem else "allowed", **params}
        if problem is not None:
            details.update(status=problem.status, problem=problem.slug)
        self.audit.record(
            account.id,
            f"{route.method} {route.template}",
            target_account_id=target,
            reason=str(getattr(body, "reason", "") or ""),
            roles=list(account.roles),
            details=details,
        )

    def records_of_processing(self) -> dict[str, Any]:
        """The record of processing activities (GDPR Art. 30), built from the data map (shared/ropa.py)."""
        from shared.ropa import record_of_processing

        return record_of_processing(self.settings)
