"""The TOTP second factor and its recovery codes (P25): each code accepted once, checked in constant time."""

from __future__ import annotations

import secrets

import pyotp

from shared.errors import InvalidCredentials
from shared.identity.context import IdentityContext
from shared.identity.model import Account

RECOVERY_CODES = 10
TOTP_ISSUER = "WizyVision"


def mfa_required() -> InvalidCredentials:
    return InvalidCredentials(
        "mfa-required", "Send totp_code or recovery_code.", title="Second factor required", mfa_required=True
    )


def mfa_refused() -> InvalidCredentials:
    return InvalidCredentials("invalid-mfa-code", "The code is not valid.", title="Second factor refused")


def ascii_digits(code: str) -> bool:
    """Six ASCII digits: `str.isdigit` alone accepts '١٢٣' and other scripts' digits."""
    return code.isascii() and code.isdigit()


class SecondFactor:
    def __init__(self, ctx: IdentityContext) -> None:
        self.ctx = ctx

    def new_secret(self, account: Account) -> tuple[str, str, str]:
        """(secret, its sealed form for storage, the otpauth URI for an authenticator app)."""
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(name=account.email, issuer_name=TOTP_ISSUER)
        return secret, self.ctx.box.seal(secret, account.id), uri

    def accept_totp(self, account: Account, code: str) -> bool:
        """A code from the current 30 s step or its neighbours, each step accepted once only."""
        code = code.strip()
        if not account.totp_secret or not ascii_digits(code):
            return False
        totp = pyotp.TOTP(self.ctx.box.open(account.totp_secret, account.id))
        step_now = int(self.ctx.clock().timestamp()) // totp.interval
        for step in (step_now - 1, step_now, step_now + 1):
            if step > account.totp_last_step and secrets.compare_digest(totp.at(step * totp.interval), code):
                if self.ctx.stores.accounts.claim_totp_step(account.id, step):
                    account.totp_last_step = step
                    return True
                return False
        return False

    def recovery_digest(self, code: str) -> str:
        return self.ctx.digest("recovery", code.strip().replace("-", "").lower())

    def accept_recovery_code(self, account: Account, code: str) -> bool:
        if not code.isascii():
            return False
        return self.ctx.stores.accounts.spend_recovery_code(account.id, self.recovery_digest(code))

    def new_recovery_codes(self) -> tuple[list[str], list[str]]:
        """(codes to show once, their digests to store)."""
        codes = ["-".join([secrets.token_hex(3), secrets.token_hex(3)]) for _ in range(RECOVERY_CODES)]
        return codes, [self.recovery_digest(c) for c in codes]

    def check(self, account: Account, totp_code: str | None, recovery_code: str | None, ip: str, ua: str) -> bool:
        """Whether the code given proves the second factor. Raises mfa-required when none was given."""
        if not totp_code and not recovery_code:
            raise mfa_required()
        if totp_code and self.accept_totp(account, totp_code):
            return True
        if recovery_code and self.accept_recovery_code(account, recovery_code):
            self.ctx.event(account.id, "recovery_code_used", ip, ua)
            return True
        return False
