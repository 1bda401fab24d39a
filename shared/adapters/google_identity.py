"""Google sign-in through Firebase Authentication (P2, P3).

The client signs in with Google (OAuth 2.0, we never see the Google password) and sends us the
Firebase ID token. It is verified in full by firebase-admin: signature against Google's keys,
issuer, audience (our project), expiry, and revocation (`check_revoked=True`). Only the claims
sign-in needs are kept (P3): the Google subject, the email, the name. No Google access or refresh
token ever reaches this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import firebase_admin
import firebase_admin.credentials
from firebase_admin import auth, exceptions

from shared.adapters.firebase import firebase_app
from shared.errors import Forbidden, InvalidCredentials, Unavailable
from shared.observability import get_logger

log = get_logger(__name__)
GOOGLE_PROVIDER = "google.com"


@dataclass(frozen=True)
class GoogleIdentity:
    subject: str
    firebase_uid: str
    email: str
    first_name: str
    last_name: str
    auth_time: datetime


class GoogleVerifier(Protocol):
    def verify(self, id_token: str) -> GoogleIdentity: ...


def _invalid(slug: str, detail: str) -> InvalidCredentials:
    return InvalidCredentials(slug, detail, title="Google sign-in refused")


def identity_from_claims(claims: dict[str, Any]) -> GoogleIdentity:
    """Keep only subject, email and names from verified claims (P3); refuse anything not Google."""
    firebase_claims = claims.get("firebase") or {}
    if firebase_claims.get("sign_in_provider") != GOOGLE_PROVIDER:
        raise _invalid(
            "google-provider-required",
            "The ID token was not issued for a Google sign-in.",
        )
    subjects = (firebase_claims.get("identities") or {}).get(GOOGLE_PROVIDER) or []
    email = str(claims.get("email") or "").strip().lower()
    if not subjects or not email:
        raise _invalid("invalid-google-token", "The ID token carries no Google subject or email.")
    if claims.get("email_verified") is not True:
        raise Forbidden("google-email-unverified", "Google has not verified this address.", title="Email not verified")
    name = str(claims.get("name") or "").strip()
    first, _, last = name.partition(" ")
    auth_time = datetime.fromtimestamp(int(claims.get("auth_time") or claims.get("iat") or 0), UTC)
    return GoogleIdentity(
        subject=str(subjects[0]),
        firebase_uid=str(claims.get("uid") or claims.get("sub")),
        email=email,
        first_name=first[:100],
        last_name=last.strip()[:100],
        auth_time=auth_time,
    )


class FirebaseGoogleVerifier:
    """Verifies Firebase ID tokens with firebase-admin (honours FIREBASE_AUTH_EMULATOR_HOST locally)."""

    APP_NAME = "identity"

    def __init__(self, project_id: str, credential: firebase_admin.credentials.Base | None = None) -> None:
        self._project_id = project_id
        self._credential = credential
        self._app: firebase_admin.App | None = None

    @property
    def app(self) -> firebase_admin.App:
        if self._app is None:
            self._app = firebase_app(self.APP_NAME, self._project_id, self._credential)
        return self._app

    def verify(self, id_token: str) -> GoogleIdentity:
        try:
            claims = auth.verify_id_token(id_token, app=self.app, check_revoked=True)
        except auth.ExpiredIdTokenError:
            raise _invalid(
                "google-token-expired",
                "The ID token has expired; sign in with Google again.",
            ) from None
        except auth.RevokedIdTokenError:
            raise _invalid(
                "google-token-revoked",
                "The ID token was revoked; sign in with Google again.",
            ) from None
        except auth.UserDisabledError:
            raise Forbidden("google-account-disabled", "This identity is disabled.", title="Account disabled") from None
        except auth.CertificateFetchError:
            log.error("google certificates unavailable")
            raise Unavailable("Google sign-in is unavailable; retry.", slug="identity-provider-unavailable") from None
        except (auth.InvalidIdTokenError, ValueError):
            raise _invalid("invalid-google-token", "The ID token is not valid.") from None
        except exceptions.FirebaseError:
            log.error("firebase authentication unavailable")
            raise Unavailable("Google sign-in is unavailable; retry.", slug="identity-provider-unavailable") from None
        return identity_from_claims(claims)
