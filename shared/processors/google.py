"""Google as a processor: the Firebase Authentication user (P2, P11, P24).

Export is the Firebase user record (identity fields, providers, timestamps); erasure is
`auth.delete_user`, permanent. The user is found by the account's `firebase_uid` and by the email
(a password account may still have a Firebase user from an earlier Google sign-in). Locally
firebase-admin talks to the Auth emulator (FIREBASE_AUTH_EMULATOR_HOST).

Firestore and Cloud Storage, the other Google services holding account data, are erased place by
place from shared/datamap.py by the privacy worker, not here.
"""

from __future__ import annotations

from typing import Any

import firebase_admin
from firebase_admin import auth, exceptions

from shared.adapters.firebase import firebase_app
from shared.config import Settings
from shared.processors import ProcessorError, StepOutcome, Subject
from shared.processors.base import run_erase

NAME = "Google"
_TRANSIENT = (
    exceptions.UnavailableError,
    exceptions.DeadlineExceededError,
    exceptions.InternalError,
    exceptions.UnknownError,
    exceptions.AbortedError,
)


def _outcome(exc: exceptions.FirebaseError, what: str) -> StepOutcome:
    code = str(getattr(exc, "code", "") or type(exc).__name__)
    if isinstance(exc, exceptions.ResourceExhaustedError):
        return StepOutcome("retry", f"{what}: {code}")
    if isinstance(exc, _TRANSIENT):
        return StepOutcome("retry", f"{what}: {code}")
    return StepOutcome("failed", f"{what}: {code}")


def _ms(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def user_fields(user: auth.UserRecord) -> dict[str, Any]:
    """What Firebase Authentication holds about the person (no password hash: get_user never returns one)."""
    meta = user.user_metadata
    return {
        "uid": user.uid,
        "email": user.email,
        "email_verified": user.email_verified,
        "display_name": user.display_name,
        "phone_number": user.phone_number,
        "photo_url": user.photo_url,
        "disabled": user.disabled,
        "providers": [
            {
                "provider_id": p.provider_id,
                "uid": p.uid,
                "email": p.email,
                "display_name": p.display_name,
            }
            for p in user.provider_data
        ],
        "custom_claims": user.custom_claims or {},
        "created_at_ms": _ms(meta.creation_timestamp) if meta else None,
        "last_sign_in_at_ms": _ms(meta.last_sign_in_timestamp) if meta else None,
        "last_refresh_at_ms": _ms(meta.last_refresh_timestamp) if meta else None,
        "tokens_valid_after_ms": _ms(user.tokens_valid_after_timestamp),
    }


class GoogleAdapter:
    name = NAME
    APP_NAME = "processors"

    def __init__(self, settings: Settings, app: firebase_admin.App | None = None) -> None:
        self.settings = settings
        self._app = app

    @property
    def app(self) -> firebase_admin.App:
        if self._app is None:
            self._app = firebase_app(self.APP_NAME, self.settings.project_id)
        return self._app

    def _users(self, subject: Subject) -> list[auth.UserRecord]:
        found: dict[str, auth.UserRecord] = {}
        lookups: list[tuple[str, Any]] = []
        if subject.firebase_uid:
            lookups.append(("get_user", lambda: auth.get_user(subject.firebase_uid, app=self.app)))
        if subject.email:
            lookups.append(("get_user_by_email", lambda: auth.get_user_by_email(subject.email, app=self.app)))
        for what, lookup in lookups:
            try:
                user = lookup()
            except auth.UserNotFoundError:
                continue
            except exceptions.FirebaseError as exc:
                raise ProcessorError(_outcome(exc, what)) from exc
            found[user.uid] = user
        return list(found.values())

    def export(self, subject: Subject) -> dict[str, Any]:
        users = self._users(subject)
        return {"found": bool(users), "users": [user_fields(u) for u in users]}

    def erase(self, subject: Subject) -> StepOutcome:
        return run_erase(self.name, lambda: self._erase(subject))

    def _erase(self, subject: Subject) -> StepOutcome:
        users = self._users(subject)
        if not users:
            return StepOutcome("not_found", "no Firebase Authentication user")
        deleted = 0
        for user in users:
            try:
                auth.delete_user(user.uid, app=self.app)
                deleted += 1
            except auth.UserNotFoundError:
                continue
            except exceptions.FirebaseError as exc:
                return _outcome(exc, "delete_user")
        if not deleted:
            return StepOutcome("not_found", "no Firebase Authentication user")
        return StepOutcome("done", f"{deleted} Firebase Authentication user(s) deleted")
