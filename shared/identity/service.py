"""The identity service layer: every use case of the auth function, over Firestore and the mailer.

Promises kept here: P1 (passwords hashed, never stored or sent in clear), P2/P3 (Google sign-in,
Limited Use), P15 (profile and rectification), P16 (verified email before sign-in), P21 (session
records), P22 (throttling, lockout, security events, new-device notice), P25 (password change and
reset revoke sessions; optional TOTP second factor).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.google_identity import GoogleIdentity, GoogleVerifier
from shared.adapters.mail import Mailer
from shared.config import Settings
from shared.http.problems import Problem, forbidden, not_found, unauthorized
from shared.identity import mails
from shared.identity.model import (
    ACCOUNT_EMAILS,
    ACCOUNTS,
    GOOGLE_IDENTITIES,
    MAX_KNOWN_DEVICES,
    SECURITY_EVENTS,
    SESSIONS,
    SIGNIN_THROTTLE,
    VERIFICATION_TOKENS,
    Account,
    Principal,
    SessionRecord,
)
from shared.identity.passwords import PasswordHasher, PasswordRejected, check_policy
from shared.identity.throttle import ThrottleState, record_failure, retry_after
from shared.identity.tokens import (
    SecretBox,
    email_key,
    keyed_digest,
    new_id,
    new_token,
    token_hash,
)
from shared.observability import get_logger

log = get_logger(__name__)

Clock = Callable[[], datetime]

VERIFY_EMAIL = "verify_email"
CHANGE_EMAIL = "change_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 (a token purpose, not a password)
TOUCH_EVERY = timedelta(minutes=1)
RECOVERY_CODES = 10
TOTP_ISSUER = "WizyVision"

INVALID_CREDENTIALS = Problem(401, "invalid-credentials", "Sign-in failed", "The email or password is incorrect.")


def utcnow() -> datetime:
    return datetime.now(UTC)


def weak_password(exc: PasswordRejected, field: str = "password") -> Problem:
    return Problem(
        422,
        "weak-password",
        "Password refused",
        str(exc),
        errors=[{"field": field, "message": str(exc), "code": exc.reason}],
    )


class IdentityService:
    def __init__(
        self,
        db: firestore.Client,
        settings: Settings,
        hasher: PasswordHasher,
        mailer: Mailer,
        google: GoogleVerifier,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher
        self.mailer = mailer
        self.google = google
        self.clock = clock
        settings.require_keys("password_pepper", "totp_encryption_key")
        self.box = SecretBox(settings.totp_encryption_key)

    # -- documents ------------------------------------------------------------------------------
    def _account_ref(self, account_id: str) -> firestore.DocumentReference:
        return self.db.collection(ACCOUNTS).document(account_id)

    def _email_ref(self, email: str) -> firestore.DocumentReference:
        return self.db.collection(ACCOUNT_EMAILS).document(email_key(email))

    def get_account(self, account_id: str) -> Account | None:
        snap = self._account_ref(account_id).get()
        return Account.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None

    def find_by_email(self, email: str) -> Account | None:
        index = self._email_ref(email).get()
        if not index.exists:
            return None
        return self.get_account((index.to_dict() or {})["account_id"])

    def _save(self, account: Account, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(account, name, value)
        account.updated_at = self.clock()
        self._account_ref(account.id).update({**changes, "updated_at": account.updated_at})

    def security_event(self, account_id: str, kind: str, ip: str = "", user_agent: str = "", **details: Any) -> None:
        """Record a security event on the account (P22), kept for a limited time (TTL on expire_at)."""
        batch = self.db.batch()
        self._add_security_event(batch, account_id, kind, ip, user_agent, **details)
        batch.commit()

    def _add_security_event(
        self, batch: firestore.WriteBatch, account_id: str, kind: str, ip: str, user_agent: str, **details: Any
    ) -> None:
        now = self.clock()
        batch.set(
            self.db.collection(SECURITY_EVENTS).document(),
            {
                "account_id": account_id,
                "type": kind,
                "at": now,
                "ip": ip,
                "user_agent": user_agent[:512],
                "details": details,
                "expire_at": now + timedelta(days=self.settings.security_event_retention_days),
            },
        )
        log.info("security event", account_id=account_id, event=kind)

    # -- one-time tokens (verification, email change, password reset) ---------------------------
    def _issue_token(self, account_id: str, purpose: str, minutes: int, **data: Any) -> str:
        """A fresh single-use token; earlier unused tokens of the same purpose stop working."""
        tokens = self.db.collection(VERIFICATION_TOKENS)
        stale = (
            tokens.where(filter=FieldFilter("account_id", "==", account_id))
            .where(filter=FieldFilter("purpose", "==", purpose))
            .stream()
        )
        for doc in stale:
            doc.reference.delete()
        token = new_token()
        now = self.clock()
        tokens.document(token_hash(token)).set(
            {
                "account_id": account_id,
                "purpose": purpose,
                "created_at": now,
                "expires_at": now + timedelta(minutes=minutes),
                **data,
            }
        )
        return token

    def _consume_token(self, token: str, purposes: set[str]) -> dict[str, Any]:
        """Use a token once: deleted in the same transaction that reads it."""
        ref = self.db.collection(VERIFICATION_TOKENS).document(token_hash(token))
        now = self.clock()

        @firestore.transactional
        def consume(tx: firestore.Transaction) -> dict[str, Any] | None:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return None
            data = snap.to_dict() or {}
            tx.delete(ref)
            return data

        data = consume(self.db.transaction()) if token else None
        if not data or data.get("purpose") not in purposes:
            raise Problem(
                400,
                "invalid-token",
                "Invalid link",
                "This link is invalid or was already used.",
            )
        if data["expires_at"] <= now:
            raise Problem(
                400,
                "expired-token",
                "Expired link",
                "This link has expired; ask for a new one.",
            )
        return data

    # -- sign-up and verification (P15, P16) ----------------------------------------------------
    def signup(
        self,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        ip: str,
        user_agent: str,
    ) -> None:
        """Same outcome for the caller whether or not the address is taken (no account enumeration)."""
        try:
            check_policy(password, email)
        except PasswordRejected as exc:
            raise weak_password(exc) from None
        password_hash = self.hasher.hash(password)
        now = self.clock()
        email_ref = self._email_ref(email)
        new_account = Account(
            id=new_id("acc"),
            email=email,
            first_name=first_name,
            last_name=last_name,
            created_at=now,
            updated_at=now,
            password_hash=password_hash,
        )

        @firestore.transactional
        def register(tx: firestore.Transaction) -> tuple[str, Account]:
            index = email_ref.get(transaction=tx)
            if index.exists:
                snap = self._account_ref((index.to_dict() or {})["account_id"]).get(transaction=tx)
                existing = Account.from_doc(snap.id, snap.to_dict() or {})
                if existing.email_verified:
                    return "taken", existing
                # Unverified: the newest sign-up wins (an unverified pre-registration is never kept).
                tx.update(
                    snap.reference,
                    {
                        "password_hash": password_hash,
                        "password_disabled_reason": None,
                        "first_name": first_name,
                        "last_name": last_name,
                        "updated_at": now,
                    },
                )
                existing.first_name = first_name
                return "unverified", existing
            tx.create(email_ref, {"account_id": new_account.id, "created_at": now})
            tx.create(self._account_ref(new_account.id), new_account.to_doc())
            return "created", new_account

        outcome, account = register(self.db.transaction())
        if outcome == "taken":
            self.security_event(account.id, "signup_attempt_on_existing_account", ip, user_agent)
            self.mailer.send(mails.already_registered(account.email, account.first_name, self.settings.app_url))
            return
        if outcome == "created":
            log.info("account created", account_id=account.id)
        self._send_verification(account)

    def _send_verification(self, account: Account) -> None:
        minutes = self.settings.verification_token_minutes
        token = self._issue_token(account.id, VERIFY_EMAIL, minutes, email=account.email)
        self.mailer.send(
            mails.verification(
                account.email,
                account.first_name,
                self.settings.public_base_url,
                token,
                minutes,
            )
        )

    def resend_verification(self, email: str) -> None:
        account = self.find_by_email(email)
        if account is not None and not account.email_verified:
            self._send_verification(account)

    def verify_email(self, token: str) -> Account:
        """Confirm an address: the sign-up address (P16) or a new login address (P15)."""
        data = self._consume_token(token, {VERIFY_EMAIL, CHANGE_EMAIL})
        account = self.get_account(data["account_id"])
        if account is None:
            raise Problem(
                400,
                "invalid-token",
                "Invalid link",
                "This link is invalid or was already used.",
            )
        if data["purpose"] == VERIFY_EMAIL:
            if account.email != data.get("email"):
                raise Problem(
                    400,
                    "invalid-token",
                    "Invalid link",
                    "This link is for an address no longer in use.",
                )
            if not account.email_verified:
                self._save(account, email_verified=True)
                self.security_event(account.id, "email_verified")
            return account
        return self._apply_email_change(account, data["email"])

    def _apply_email_change(self, account: Account, new_email: str) -> Account:
        old_ref, new_ref, account_ref = (
            self._email_ref(account.email),
            self._email_ref(new_email),
            self._account_ref(account.id),
        )
        now = self.clock()

        @firestore.transactional
        def swap(tx: firestore.Transaction) -> None:
            taken = new_ref.get(transaction=tx)
            if taken.exists and (taken.to_dict() or {}).get("account_id") != account.id:
                raise Problem(
                    409,
                    "email-taken",
                    "Address unavailable",
                    "This address is used by another account.",
                )
            tx.set(new_ref, {"account_id": account.id, "created_at": now})
            tx.delete(old_ref)
            tx.update(
                account_ref,
                {
                    "email": new_email,
                    "email_verified": True,
                    "pending_email": None,
                    "updated_at": now,
                },
            )

        swap(self.db.transaction())
        self.security_event(account.id, "email_changed")
        account.email, account.email_verified, account.pending_email = (
            new_email,
            True,
            None,
        )
        return account

    # -- sign-in with a password (P1, P16, P22, P25) ----------------------------------------------
    def _throttle_refs(self, email: str, ip: str) -> list[firestore.DocumentReference]:
        pepper = self.settings.password_pepper
        col = self.db.collection(SIGNIN_THROTTLE)
        return [
            col.document(keyed_digest(pepper, "email", email)),
            col.document(keyed_digest(pepper, "ip", ip)),
        ]

    def _check_throttle(
        self, refs: list[firestore.DocumentReference], also: firestore.DocumentReference | None = None
    ) -> firestore.DocumentSnapshot | None:
        """429 while a key is locked. Reads `also` in the same round trip and returns its snapshot."""
        now = self.clock()
        snaps = {snap.reference.path: snap for snap in self.db.get_all([*refs, *([also] if also else [])])}
        waits = [retry_after(ThrottleState.from_doc(snaps[ref.path].to_dict()), now) for ref in refs]
        wait = max((w for w in waits if w), default=None)
        if wait:
            raise Problem(
                429,
                "too-many-attempts",
                "Too many attempts",
                "Too many failed sign-ins; wait before trying again.",
                headers={"Retry-After": str(wait)},
                retry_after=wait,
            )
        return snaps[also.path] if also else None

    def _record_failure(
        self,
        refs: list[firestore.DocumentReference],
        account: Account | None,
        reason: str,
        ip: str,
        ua: str,
    ) -> None:
        now = self.clock()

        @firestore.transactional
        def bump(tx: firestore.Transaction) -> bool:
            snaps = list(tx.get_all(refs))
            by_id = {s.id: s for s in snaps}
            locked_any = False
            for ref in refs:
                snap = by_id.get(ref.id)
                state, locked = record_failure(ThrottleState.from_doc(snap.to_dict() if snap else None), now)
                tx.set(ref, state.to_doc())
                locked_any = locked_any or locked
            return locked_any

        locked = bump(self.db.transaction())
        if account is not None:
            self.security_event(account.id, "signin_failed", ip, ua, reason=reason)
            if locked:
                self.security_event(account.id, "signin_locked", ip, ua)
        if locked:
            log.warning("sign-in key locked", account_id=account.id if account else None)

    def signin(
        self,
        email: str,
        password: str,
        ip: str,
        user_agent: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> tuple[str, SessionRecord, Account]:
        refs = self._throttle_refs(email, ip)
        index = self._check_throttle(refs, also=self._email_ref(email))
        account = self.get_account((index.to_dict() or {})["account_id"]) if index and index.exists else None
        stored = account.password_hash if account and account.status == "active" else None
        if not self.hasher.verify(password, stored):
            self._record_failure(refs, account, "password", ip, user_agent)
            raise INVALID_CREDENTIALS
        assert account is not None and stored is not None
        if not account.email_verified:
            raise forbidden(
                "email-not-verified",
                "Confirm your email address first: follow the link we sent.",
            )
        if account.totp_enabled:
            self._second_factor(account, refs, totp_code, recovery_code, ip, user_agent)
        if self.hasher.needs_rehash(stored):
            self._save(account, password_hash=self.hasher.hash(password))
        return self._open_session(account, "password", ip, user_agent, clear=refs[0])

    def _second_factor(
        self,
        account: Account,
        refs: list[firestore.DocumentReference],
        totp_code: str | None,
        recovery_code: str | None,
        ip: str,
        ua: str,
    ) -> None:
        if not totp_code and not recovery_code:
            raise Problem(
                401,
                "mfa-required",
                "Second factor required",
                "Send totp_code or recovery_code.",
                mfa_required=True,
            )
        if totp_code and self._accept_totp(account, totp_code):
            return
        if recovery_code and self._accept_recovery_code(account, recovery_code):
            self.security_event(account.id, "recovery_code_used", ip, ua)
            return
        self._record_failure(refs, account, "second_factor", ip, ua)
        raise Problem(401, "invalid-mfa-code", "Second factor refused", "The code is not valid.")

    def _accept_totp(self, account: Account, code: str) -> bool:
        """A code from the current 30 s step or its neighbours, each step accepted once only."""
        if not account.totp_secret or not code.isdigit():
            return False
        totp = pyotp.TOTP(self.box.open(account.totp_secret, account.id))
        now = self.clock()
        step_now = int(now.timestamp()) // totp.interval
        for step in (step_now - 1, step_now, step_now + 1):
            if step > account.totp_last_step and secrets.compare_digest(totp.at(step * totp.interval), code):
                if self._claim_totp_step(account.id, step):
                    account.totp_last_step = step
                    return True
                return False
        return False

    def _claim_totp_step(self, account_id: str, step: int) -> bool:
        """Record the step as used, unless a concurrent sign-in used it (or a later one) first."""
        ref = self._account_ref(account_id)

        @firestore.transactional
        def claim(tx: firestore.Transaction) -> bool:
            last = int((ref.get(transaction=tx).to_dict() or {}).get("totp_last_step") or 0)
            if step <= last:
                return False
            tx.update(ref, {"totp_last_step": step})
            return True

        return claim(self.db.transaction())

    def _recovery_digest(self, code: str) -> str:
        return keyed_digest(
            self.settings.password_pepper,
            "recovery",
            code.strip().replace("-", "").lower(),
        )

    def _accept_recovery_code(self, account: Account, code: str) -> bool:
        digest = self._recovery_digest(code)
        ref = self._account_ref(account.id)

        @firestore.transactional
        def spend(tx: firestore.Transaction) -> bool:
            codes = list((ref.get(transaction=tx).to_dict() or {}).get("recovery_codes") or [])
            if digest not in codes:
                return False
            codes.remove(digest)
            tx.update(ref, {"recovery_codes": codes})
            return True

        return spend(self.db.transaction())

    # -- Google sign-in (P2, P3) ----------------------------------------------------------------
    def google_signin(self, id_token: str, ip: str, user_agent: str) -> tuple[str, SessionRecord, Account]:
        identity = self.google.verify(id_token)
        account = self._link_google(identity)
        if account.status != "active":
            raise INVALID_CREDENTIALS
        return self._open_session(account, "google", ip, user_agent, authenticated_at=identity.auth_time)

    def _link_google(self, identity: GoogleIdentity) -> Account:
        """Find or create the account for a Google subject. The link is keyed on the subject, never the email."""
        subject_ref = self.db.collection(GOOGLE_IDENTITIES).document(identity.subject)
        email_ref = self._email_ref(identity.email)
        now = self.clock()
        fresh = Account(
            id=new_id("acc"),
            email=identity.email,
            first_name=identity.first_name,
            last_name=identity.last_name,
            created_at=now,
            updated_at=now,
            email_verified=True,
            google_subject=identity.subject,
            firebase_uid=identity.firebase_uid,
        )

        @firestore.transactional
        def link(tx: firestore.Transaction) -> tuple[str, str]:
            linked = subject_ref.get(transaction=tx)
            if linked.exists:
                return "known", (linked.to_dict() or {})["account_id"]
            index = email_ref.get(transaction=tx)
            if not index.exists:
                tx.create(email_ref, {"account_id": fresh.id, "created_at": now})
                tx.create(self._account_ref(fresh.id), fresh.to_doc())
                tx.create(subject_ref, {"account_id": fresh.id, "created_at": now})
                return "created", fresh.id
            account_id = (index.to_dict() or {})["account_id"]
            snap = self._account_ref(account_id).get(transaction=tx)
            existing = Account.from_doc(snap.id, snap.to_dict() or {})
            if existing.google_subject and existing.google_subject != identity.subject:
                raise Problem(
                    409,
                    "identity-conflict",
                    "Account conflict",
                    "This address belongs to another Google identity.",
                )
            changes: dict[str, Any] = {
                "google_subject": identity.subject,
                "firebase_uid": identity.firebase_uid,
                "updated_at": now,
            }
            outcome = "linked"
            if not existing.email_verified:
                # Google proved the mailbox; whoever set the unverified password did not. The password
                # is disabled until a reset, so a pre-registered account cannot be taken over.
                changes.update(
                    email_verified=True,
                    password_hash=None,
                    password_disabled_reason="unverified_email",  # noqa: S106
                )
                outcome = "linked_password_disabled"
            tx.update(snap.reference, changes)
            tx.create(subject_ref, {"account_id": account_id, "created_at": now})
            return outcome, account_id

        outcome, account_id = link(self.db.transaction())
        if outcome != "known":
            self.security_event(account_id, f"google_{outcome}")
        account = self.get_account(account_id)
        if account is None:
            raise unauthorized("The account linked to this Google identity no longer exists.")
        return account

    # -- sessions (P21) -------------------------------------------------------------------------
    def _open_session(
        self,
        account: Account,
        method: str,
        ip: str,
        user_agent: str,
        authenticated_at: datetime | None = None,
        clear: firestore.DocumentReference | None = None,
    ) -> tuple[str, SessionRecord, Account]:
        """Write the session record, the device digests and the security event in one commit."""
        now = self.clock()
        token = new_token()
        record = SessionRecord(
            id=new_id("ses"),
            account_id=account.id,
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=self.settings.session_absolute_hours),
            ip=ip,
            user_agent=user_agent,
            method=method,
            authenticated_at=authenticated_at or now,
        )
        pepper = self.settings.password_pepper
        marks = [keyed_digest(pepper, "ua", user_agent), keyed_digest(pepper, "ip", ip)]
        unseen = [m for m in marks if m not in account.known_devices]
        notify = bool(unseen) and bool(account.known_devices)  # never for the very first sign-in
        account.known_devices = (account.known_devices + unseen)[-MAX_KNOWN_DEVICES:]
        account.last_active_at = now
        batch = self.db.batch()
        batch.set(self.db.collection(SESSIONS).document(record.token_hash), record.to_doc())
        batch.update(self._account_ref(account.id), {"known_devices": account.known_devices, "last_active_at": now})
        self._add_security_event(batch, account.id, "signin_succeeded", ip, user_agent, method=method)
        if notify:
            self._add_security_event(batch, account.id, "new_device_signin", ip, user_agent)
        if clear is not None:
            batch.delete(clear)
        batch.commit()
        if notify:
            when = now.strftime("%Y-%m-%d %H:%M UTC")
            self.mailer.send(mails.new_device(account.email, account.first_name, when, ip, user_agent))
        return token, record, account

    def authenticate(self, token: str) -> Principal:
        """The principal for a bearer token, or 401. Idle and absolute timeouts are enforced here."""
        ref = self.db.collection(SESSIONS).document(token_hash(token))
        snap = ref.get()
        if not snap.exists:
            raise unauthorized()
        record = SessionRecord.from_doc(snap.id, snap.to_dict() or {})
        now = self.clock()
        idle = timedelta(minutes=self.settings.session_idle_minutes)
        if record.expires_at <= now or now - record.last_seen_at > idle:
            ref.delete()
            raise unauthorized("The session has expired; sign in again.", slug="session-expired")
        account = self.get_account(record.account_id)
        if account is None or account.status != "active":
            ref.delete()
            raise unauthorized()
        if now - record.last_seen_at >= TOUCH_EVERY:
            ref.update({"last_seen_at": now})
            record.last_seen_at = now
        return Principal(account=account, session=record)

    def _sessions_of(self, account_id: str) -> list[SessionRecord]:
        docs = self.db.collection(SESSIONS).where(filter=FieldFilter("account_id", "==", account_id)).stream()
        records = [SessionRecord.from_doc(d.id, d.to_dict() or {}) for d in docs]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def list_sessions(self, principal: Principal) -> list[dict[str, Any]]:
        now = self.clock()
        idle = timedelta(minutes=self.settings.session_idle_minutes)
        return [
            r.public(current=r.id == principal.session.id)
            for r in self._sessions_of(principal.account.id)
            if r.expires_at > now and now - r.last_seen_at <= idle
        ]

    def revoke_session(self, principal: Principal, session_id: str) -> None:
        for record in self._sessions_of(principal.account.id):
            if record.id == session_id:
                self.db.collection(SESSIONS).document(record.token_hash).delete()
                self.security_event(principal.account.id, "session_revoked", session_id=session_id)
                return
        raise not_found("No such session on this account.")

    def signout(self, principal: Principal) -> None:
        self.db.collection(SESSIONS).document(principal.session.token_hash).delete()

    def revoke_sessions(self, account_id: str, keep: str | None = None) -> int:
        """End every session of the account but `keep` (a session id). Returns how many ended."""
        ended = 0
        batch = self.db.batch()
        for record in self._sessions_of(account_id):
            if record.id != keep:
                batch.delete(self.db.collection(SESSIONS).document(record.token_hash))
                ended += 1
        batch.commit()
        return ended

    # -- passwords (P25) ------------------------------------------------------------------------
    def reauthenticate(self, account: Account, password: str, ip: str, user_agent: str, reason: str) -> None:
        """Ask for the current password again before a sensitive change; failures count as sign-in failures."""
        refs = self._throttle_refs(account.email, ip)
        self._check_throttle(refs)
        if not self.hasher.verify(password, account.password_hash):
            self._record_failure(refs, account, reason, ip, user_agent)
            raise Problem(403, "invalid-current-password", "Not changed", "The current password is wrong.")

    def confirm_holder(
        self, principal: Principal, current_password: str | None, ip: str, user_agent: str, max_age: timedelta
    ) -> str:
        """Prove the account holder is at the keyboard now, before an irreversible action (P11).

        A password account sends its current password (checked by `reauthenticate`: throttled like a
        sign-in); a Google account (or a linked one) may instead have signed in with Google less than
        `max_age` ago. Returns the method that proved it.
        """
        account = principal.account
        if current_password and account.password_hash:
            self.reauthenticate(account, current_password, ip, user_agent, "reauthentication")
            return "password"
        session = principal.session
        if session.method == "google" and self.clock() - session.authenticated_at <= max_age:
            return "google"
        minutes = int(max_age.total_seconds() // 60)
        raise Problem(
            403,
            "reauthentication-required",
            "Re-authentication required",
            "Send current_password"
            + (f", or sign in with Google again (within {minutes} minutes)." if account.google_subject else "."),
        )

    def change_password(self, principal: Principal, current: str, new: str, ip: str, user_agent: str) -> int:
        account = principal.account
        self.reauthenticate(account, current, ip, user_agent, "password_change")
        try:
            check_policy(new, account.email)
        except PasswordRejected as exc:
            raise weak_password(exc, "new_password") from None
        self._save(account, password_hash=self.hasher.hash(new), password_disabled_reason=None)
        ended = self.revoke_sessions(account.id, keep=principal.session.id)
        self.security_event(account.id, "password_changed", ip, user_agent, sessions_ended=ended)
        self.mailer.send(mails.password_changed(account.email, account.first_name))
        return ended

    def forgot_password(self, email: str) -> None:
        account = self.find_by_email(email)
        if account is None or account.status != "active":
            return
        minutes = self.settings.reset_token_minutes
        token = self._issue_token(account.id, RESET_PASSWORD, minutes)
        self.mailer.send(mails.password_reset(account.email, account.first_name, self.settings.app_url, token, minutes))
        self.security_event(account.id, "password_reset_requested")

    def reset_password(self, token: str, new: str, ip: str, user_agent: str) -> None:
        data = self._consume_token(token, {RESET_PASSWORD})
        account = self.get_account(data["account_id"])
        if account is None:
            raise Problem(
                400,
                "invalid-token",
                "Invalid link",
                "This link is invalid or was already used.",
            )
        try:
            check_policy(new, account.email)
        except PasswordRejected as exc:
            # The token is spent only by a successful reset: put it back for another try.
            self.db.collection(VERIFICATION_TOKENS).document(token_hash(token)).set(data)
            raise weak_password(exc, "new_password") from None
        # The reset link proved control of the mailbox, so the address counts as verified.
        self._save(
            account,
            password_hash=self.hasher.hash(new),
            password_disabled_reason=None,
            email_verified=True,
        )
        ended = self.revoke_sessions(account.id)
        self.db.collection(SIGNIN_THROTTLE).document(self._throttle_refs(account.email, ip)[0].id).delete()
        self.security_event(account.id, "password_reset", ip, user_agent, sessions_ended=ended)
        self.mailer.send(mails.password_changed(account.email, account.first_name))

    # -- profile (P15) --------------------------------------------------------------------------
    def update_profile(
        self,
        principal: Principal,
        changes: dict[str, Any],
        current_password: str | None,
    ) -> Account:
        account = principal.account
        new_email = changes.pop("email", None)
        if changes:
            self._save(account, **changes)
            self.security_event(account.id, "profile_updated", fields=sorted(changes))
        if new_email and new_email != account.email:
            if account.password_hash and not self.hasher.verify(current_password or "", account.password_hash):
                raise Problem(
                    403,
                    "reauthentication-required",
                    "Password required",
                    "Send current_password to change email.",
                )
            if self.find_by_email(new_email) is not None:
                # Say nothing of whether the address is taken: the confirmation simply cannot succeed.
                log.info("email change to a taken address", account_id=account.id)
            minutes = self.settings.verification_token_minutes
            token = self._issue_token(account.id, CHANGE_EMAIL, minutes, email=new_email)
            self._save(account, pending_email=new_email)
            self.mailer.send(
                mails.email_change(
                    new_email,
                    account.first_name,
                    self.settings.public_base_url,
                    token,
                    minutes,
                )
            )
            self.mailer.send(mails.email_change_notice(account.email, account.first_name, new_email))
            self.security_event(account.id, "email_change_requested")
        return account

    def list_security_events(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        docs = (
            self.db.collection(SECURITY_EVENTS)
            .where(filter=FieldFilter("account_id", "==", principal.account.id))
            .order_by("at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .stream()
        )
        events = []
        for doc in docs:
            data = doc.to_dict() or {}
            events.append(
                {
                    "type": data.get("type"),
                    "at": data["at"].isoformat(),
                    "ip": data.get("ip", ""),
                    "user_agent": data.get("user_agent", ""),
                }
            )
        return events

    # -- second factor (P25) ----------------------------------------------------------------------
    def totp_enroll(self, principal: Principal) -> dict[str, str]:
        account = principal.account
        if not account.password_hash:
            raise forbidden(
                "password-account-required",
                "Google accounts use Google 2-Step Verification.",
            )
        if account.totp_enabled:
            raise Problem(
                409,
                "totp-already-enabled",
                "Already enabled",
                "Disable the second factor first.",
            )
        secret = pyotp.random_base32()
        self._save(account, totp_secret=self.box.seal(secret, account.id), totp_last_step=0)
        uri = pyotp.TOTP(secret).provisioning_uri(name=account.email, issuer_name=TOTP_ISSUER)
        return {"secret": secret, "otpauth_uri": uri}

    def totp_activate(self, principal: Principal, code: str, ip: str, user_agent: str) -> list[str]:
        account = principal.account
        if account.totp_enabled:
            raise Problem(
                409,
                "totp-already-enabled",
                "Already enabled",
                "The second factor is already on.",
            )
        if not account.totp_secret:
            raise Problem(
                409,
                "totp-not-enrolled",
                "Not enrolled",
                "Start with POST /auth/mfa/totp/enroll.",
            )
        refs = self._throttle_refs(account.email, ip)
        self._check_throttle(refs)
        if not self._accept_totp(account, code):
            self._record_failure(refs, account, "totp_activation", ip, user_agent)
            raise Problem(
                401,
                "invalid-mfa-code",
                "Second factor refused",
                "The code is not valid.",
            )
        codes = ["-".join([secrets.token_hex(3), secrets.token_hex(3)]) for _ in range(RECOVERY_CODES)]
        self._save(
            account,
            totp_enabled=True,
            recovery_codes=[self._recovery_digest(c) for c in codes],
        )
        self.security_event(account.id, "totp_enabled", ip, user_agent)
        self.mailer.send(mails.second_factor_changed(account.email, account.first_name, enabled=True))
        return codes

    def totp_disable(self, principal: Principal, current_password: str, ip: str, user_agent: str) -> None:
        account = principal.account
        self.reauthenticate(account, current_password, ip, user_agent, "totp_disable")
        self._save(
            account,
            totp_enabled=False,
            totp_secret=None,
            recovery_codes=[],
            totp_last_step=0,
        )
        self.security_event(account.id, "totp_disabled", ip, user_agent)
        self.mailer.send(mails.second_factor_changed(account.email, account.first_name, enabled=False))
