"""Request bodies of the auth function, validated by pydantic (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated

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


class GoogleBody(Strict):
    id_token: IdToken


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
