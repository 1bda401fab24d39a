"""Full verification of Google identities (P2) and Limited Use of their claims (P3).

The Auth emulator skips signature and expiry checks, so these branches are proven here with
tokens signed by a local key whose certificate the verifier fetches instead of Google's.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from firebase_admin import auth, credentials

from shared.adapters.google_identity import FirebaseGoogleVerifier, identity_from_claims
from shared.errors import DomainError
from shared.http.errors import problem_for

pytestmark = pytest.mark.policy("P2")
PROJECT = "demo-unit-google"


def _key_and_cert() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, cert.public_bytes(serialization.Encoding.PEM)


GOOGLE_KEY, GOOGLE_CERT = _key_and_cert()
OTHER_KEY, _ = _key_and_cert()


class Anonymous(credentials.Base):
    """No Google credentials in a unit test: the verifier fetches only the (faked) public certificates."""

    def get_credential(self) -> google.auth.credentials.Credentials:
        return google.auth.credentials.AnonymousCredentials()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "firebase-uid-1",
        "iat": now - 10,
        "exp": now + 3600,
        "auth_time": now - 10,
        "email": "Grace@Example.com",
        "email_verified": True,
        "name": "Grace Brewster Hopper",
        "picture": "https://example.com/p.png",
        "firebase": {"identities": {"google.com": ["1098"]}, "sign_in_provider": "google.com"},
    }
    base.update(overrides)
    return base


def sign(payload: dict[str, Any], key: bytes = GOOGLE_KEY, kid: str = "k1") -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> FirebaseGoogleVerifier:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    verifier = FirebaseGoogleVerifier(PROJECT, credential=Anonymous())
    client = auth._get_client(verifier.app)

    def fetch(url: str, method: str = "GET", **_: Any) -> SimpleNamespace:
        return SimpleNamespace(status=200, data=json.dumps({"k1": GOOGLE_CERT.decode()}).encode(), headers={})

    monkeypatch.setattr(client._token_verifier, "request", fetch)
    monkeypatch.setattr(client, "_check_jwt_revoked_or_disabled", lambda *a, **k: None)
    return verifier


def slug(excinfo: pytest.ExceptionInfo[DomainError]) -> str:
    return excinfo.value.code


@pytest.mark.policy("P3")
def test_a_valid_google_token_yields_only_subject_email_and_names(verifier: FirebaseGoogleVerifier) -> None:
    identity = verifier.verify(sign(claims()))
    assert identity.subject == "1098" and identity.firebase_uid == "firebase-uid-1"
    assert identity.email == "grace@example.com"
    assert (identity.first_name, identity.last_name) == ("Grace", "Brewster Hopper")
    assert set(vars(identity)) == {"subject", "firebase_uid", "email", "first_name", "last_name", "auth_time"}


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (lambda: sign(claims(), key=OTHER_KEY), "invalid-google-token"),
        (lambda: sign(claims(), kid="unknown"), "invalid-google-token"),
        (lambda: sign(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 4000)), "google-token-expired"),
        (lambda: sign(claims(aud="another-project")), "invalid-google-token"),
        (lambda: sign(claims(iss="https://securetoken.google.com/another-project")), "invalid-google-token"),
        (
            lambda: jwt.encode(
                claims(), "secret-hs256-key-of-32-bytes-long!", algorithm="HS256", headers={"kid": "k1"}
            ),
            "invalid-google-token",
        ),
        (lambda: sign(claims())[:-8] + "AAAAAAAA", "invalid-google-token"),
    ],
    ids=["wrong-signer", "unknown-kid", "expired", "wrong-audience", "wrong-issuer", "hs256", "tampered"],
)
def test_forged_expired_or_foreign_tokens_are_refused(
    verifier: FirebaseGoogleVerifier, token: Any, expected: str
) -> None:
    with pytest.raises(DomainError) as refused:
        verifier.verify(token())
    assert problem_for(refused.value).status == 401 and slug(refused) == expected


def test_revoked_and_disabled_identities_are_refused(
    verifier: FirebaseGoogleVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = auth._get_client(verifier.app)

    def revoked(*_a: Any, **_k: Any) -> None:
        raise auth.RevokedIdTokenError("revoked")

    monkeypatch.setattr(client, "_check_jwt_revoked_or_disabled", revoked)
    with pytest.raises(DomainError) as refused:
        verifier.verify(sign(claims()))
    assert slug(refused) == "google-token-revoked"

    def disabled(*_a: Any, **_k: Any) -> None:
        raise auth.UserDisabledError("disabled")

    monkeypatch.setattr(client, "_check_jwt_revoked_or_disabled", disabled)
    with pytest.raises(DomainError) as refused:
        verifier.verify(sign(claims()))
    assert problem_for(refused.value).status == 403


def test_unreachable_google_keys_are_a_503_not_a_refusal(
    verifier: FirebaseGoogleVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = auth._get_client(verifier.app)

    def down(*_a: Any, **_k: Any) -> None:
        raise google.auth.exceptions.TransportError("no route")

    monkeypatch.setattr(client._token_verifier, "request", down)
    with pytest.raises(DomainError) as unavailable:
        verifier.verify(sign(claims()))
    assert problem_for(unavailable.value).status == 503 and "Retry-After" in problem_for(unavailable.value).headers


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"firebase": {"identities": {}, "sign_in_provider": "password"}}, "google-provider-required"),
        ({"email_verified": False}, "google-email-unverified"),
        ({"firebase": {"identities": {"google.com": []}, "sign_in_provider": "google.com"}}, "invalid-google-token"),
    ],
)
def test_claims_must_be_a_verified_google_identity(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(DomainError) as refused:
        identity_from_claims(claims(**change))
    assert slug(refused) == expected
