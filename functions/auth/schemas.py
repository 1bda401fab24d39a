"""Request bodies of the auth function, validated by pydantic (unknown fields refused), and its answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Token = Annotated[str, Field(min_length=1, max_length=256)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=32)]
IdToken = Annotated[str, Field(min_length=1, max_length=8192)]


def _lower(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, AfterValidator(_lower)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SignupBody(Strict):
    email: Email
    password: Password
    first_name: Name
    last_name: Name
    marketing_consent: bool = False  # P18: newsletters, offers and tips; false unless the person ticks it


class EmailBody(Strict):
    email: Email


class TokenBody(Strict):
    token: Token


class ConfirmSignupBody(Strict):
    """The link's token and the password chosen at sign-up (P16)."""

    token: Token
    password: Password


class ProofFields(Strict):
    """Step-up re-authentication (P25): one of these proves the holder is at the keyboard now."""

    current_password: Password | None = None
    google_id_token: IdToken | None = None
    totp_code: Code | None = None


class ProofBody(ProofFields):
    pass


class SigninBody(Strict):
    email: Email
    password: Password
    totp_code: Code | None = None
    recovery_code: Code | None = None
    reactivate: bool = False  # P19: confirm reactivating a cancelled account (its purge is called off)


class GoogleBody(Strict):
    id_token: IdToken
    reactivate: bool = False  # P19: confirm reactivating a cancelled account


class ChangePasswordBody(ProofFields):
    new_password: Password


class ResetPasswordBody(Strict):
    token: Token
    new_password: Password
    totp_code: Code | None = None
    recovery_code: Code | None = None


class BillingContactBody(Strict):
    name: OptionalText = None
    email: Email | None = None
    company: OptionalText = None
    address_line1: OptionalText = None
    address_line2: OptionalText = None
    city: OptionalText = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    vat_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None


class ProfilePatch(ProofFields):
    first_name: Name | None = None
    last_name: Name | None = None
    billing_contact: BillingContactBody | None = None
    email: Email | None = None


class TotpCodeBody(ProofFields):
    code: Code


# -- answers (documentation: the OpenAPI `response=` models) ---------------------------------------------------------


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class AcceptedAnswer(Answer):
    """The same answer for every address (no account enumeration)."""

    status: Literal["accepted"]
    detail: str


class VerifiedAnswer(Answer):
    status: Literal["verified"]
    email: str = Field(description="The account's login address.")


class BillingContactAnswer(Answer):
    """The billing contact on the profile (only the fields set)."""

    name: str | None = None
    email: str | None = None
    company: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    vat_id: str | None = None


class AccountAnswer(Answer):
    """The holder's own profile: no password hash, no second-factor secret, no device digest."""

    id: str
    email: str
    email_verified: bool
    pending_email: str | None = Field(description="A new login address waiting for its confirmation link.")
    first_name: str
    last_name: str
    billing_contact: BillingContactAnswer
    auth_methods: list[Literal["password", "google"]]
    totp_enabled: bool
    roles: list[Literal["admin", "dpo", "support"]]
    status: str
    created_at: datetime
    purge_at: datetime | None = Field(
        default=None, description="When the retention sweep erases an unused account (signing in keeps it)."
    )


class SessionAnswer(Answer):
    """A new session: send `session_token` as `Authorization: Bearer <token>`."""

    session_token: str
    expires_at: datetime
    session_id: str
    user: AccountAnswer


class ReauthenticatedAnswer(Answer):
    status: Literal["reauthenticated"]
    method: str = Field(description="How the holder proved it: password, google, totp or a recent step-up.")


class SecurityEvent(Answer):
    type: str | None
    at: datetime
    ip: str
    user_agent: str


class SecurityEventsAnswer(Answer):
    events: list[SecurityEvent] = Field(description="The latest security events of the account, newest first.")


class SessionView(Answer):
    id: str
    ip: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    method: str = Field(description="How the session was opened (password, google...).")
    current: bool = Field(description="Whether this is the session making the call.")


class SessionsAnswer(Answer):
    sessions: list[SessionView]


class PasswordChangedAnswer(Answer):
    status: Literal["changed"]
    sessions_ended: int = Field(description="How many other sessions ended.")


class PasswordResetAnswer(Answer):
    status: Literal["reset"]


class TotpEnrollAnswer(Answer):
    """The new secret, to add to an authenticator app; POST /auth/mfa/totp/activate turns it on."""

    secret: str
    otpauth_uri: str


class TotpEnabledAnswer(Answer):
    status: Literal["enabled"]
    recovery_codes: list[str] = Field(description="Single-use recovery codes, shown once.")


class TotpDisabledAnswer(Answer):
    status: Literal["disabled"]


class HealthAnswer(Answer):
    status: Literal["ok"]
