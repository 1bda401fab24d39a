"""The identity domain: what an account, a session record and a security event are (P15, P21, P22)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

ACCOUNTS = "accounts"
ACCOUNT_EMAILS = "account_emails"
GOOGLE_IDENTITIES = "google_identities"
SESSIONS = "sessions"
VERIFICATION_TOKENS = "verification_tokens"
PENDING_SIGNUPS = "pending_signups"
SECURITY_EVENTS = "security_events"
SIGNIN_THROTTLE = "signin_throttle"

MAX_KNOWN_DEVICES = 20

# Staff roles (P10, P29): granted only by an admin or the CLI, never by the account holder.
ADMIN, DPO, SUPPORT = "admin", "dpo", "support"
STAFF_ROLES = frozenset({ADMIN, DPO, SUPPORT})


@dataclass
class BillingContact:
    """The billing contact the policy requires (P15); card data never lives here (P13)."""

    name: str | None = None
    email: str | None = None
    company: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    vat_id: str | None = None


@dataclass
class Account:
    """A customer account. The profile holds exactly what P15 names: names, login, billing contact."""

    id: str
    email: str
    first_name: str
    last_name: str
    created_at: datetime
    email_verified: bool = False
    billing_contact: dict[str, Any] | None = None
    password_hash: str | None = None
    password_disabled_reason: str | None = None
    google_subject: str | None = None
    firebase_uid: str | None = None
    status: str = "active"
    pending_email: str | None = None
    totp_secret: str | None = None
    totp_enabled: bool = False
    totp_last_step: int = 0
    recovery_codes: list[str] = field(default_factory=list)
    known_devices: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    last_active_at: datetime | None = None  # last use: recorded at most once a day (P27)
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None  # P19: set by a cancellation, cleared by a reactivation
    purge_at: datetime | None = None  # P27: when the retention sweep erases the account
    purge_warning_at: datetime | None = None  # P27: when the "signing in keeps your account" mail is due
    objection: dict[str, Any] | None = None  # P26: an objection (GDPR Art. 21): {marketing, analytics, at}

    @classmethod
    def from_doc(cls, doc_id: str, data: dict[str, Any]) -> Account:
        known = {f for f in cls.__dataclass_fields__}
        return cls(id=doc_id, **{k: v for k, v in data.items() if k in known and k != "id"})

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("id")
        return doc

    @property
    def auth_methods(self) -> list[str]:
        methods = []
        if self.password_hash:
            methods.append("password")
        if self.google_subject:
            methods.append("google")
        return methods

    def public(self) -> dict[str, Any]:
        """What the account holder sees of their own profile (no hash, no seed, no device digest)."""
        return {
            "id": self.id,
            "email": self.email,
            "email_verified": self.email_verified,
            "pending_email": self.pending_email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "billing_contact": self.billing_contact or {},
            "auth_methods": self.auth_methods,
            "totp_enabled": self.totp_enabled,
            "roles": sorted(self.roles),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "purge_at": self.purge_at.isoformat() if self.purge_at else None,
        }


@dataclass
class SessionRecord:
    """A session record (P21): connection information kept while the session lives."""

    id: str
    account_id: str
    token_hash: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    method: str
    authenticated_at: datetime  # when the holder signed in (for Google: Google's auth_time)
    reauthenticated_at: datetime | None = None  # the last step-up (password, Google or second factor)

    @classmethod
    def from_doc(cls, token_hash: str, data: dict[str, Any]) -> SessionRecord:
        return cls(
            id=data["id"],
            account_id=data["account_id"],
            token_hash=token_hash,
            created_at=data["created_at"],
            last_seen_at=data["last_seen_at"],
            expires_at=data["expires_at"],
            ip=data.get("ip", ""),
            user_agent=data.get("user_agent", ""),
            method=data.get("method", "password"),
            authenticated_at=data.get("authenticated_at") or data["created_at"],
            reauthenticated_at=data.get("reauthenticated_at"),
        )

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("token_hash")
        return doc

    def public(self, current: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "method": self.method,
            "current": current,
        }


@dataclass
class PendingSignup:
    """A sign-up waiting for its address to be confirmed (P16): no account exists before that.

    It keeps the password hash of the person who signed up, so that confirming the address
    activates only the password that person typed, never one chosen by someone else.
    """

    email: str
    first_name: str
    last_name: str
    password_hash: str
    created_at: datetime
    expires_at: datetime
    marketing_consent: bool = False  # P18: ticked at sign-up, recorded as the first consent choice

    @classmethod
    def from_doc(cls, data: dict[str, Any]) -> PendingSignup:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_doc(self) -> dict[str, Any]:
        from shared.identity.tokens import email_key

        return {**asdict(self), "email_key": email_key(self.email)}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request: the account and the session it came with."""

    account: Account
    session: SessionRecord
