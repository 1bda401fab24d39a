"""Step-up re-authentication (P25): one policy for every sensitive action.

Sensitive: enrol, activate or disable the second factor; change the login email or the password;
end a session other than the current one; ask for an erasure. A session token alone is never
enough for them: a stolen session must not be able to make a lasting change.

The holder proves they are at the keyboard now with their current password (password accounts),
or with a Google ID token whose `auth_time` is recent (accounts with Google), or with a TOTP code
(accounts with the second factor on). Every check goes through the sign-in throttle. A successful
step-up counts for the next actions of the same session for `REAUTH_WINDOW` (default 10 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.errors import ReauthenticationRequired
from shared.identity.attempts import Attempts
from shared.identity.context import IdentityContext
from shared.identity.model import Principal
from shared.identity.second_factor import SecondFactor
from shared.identity.sessions import Sessions
from shared.observability import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Proof:
    """What a request to a sensitive action may carry to prove the holder is there."""

    current_password: str | None = None
    google_id_token: str | None = None
    totp_code: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.current_password or self.google_id_token or self.totp_code)


class StepUp:
    def __init__(self, ctx: IdentityContext, attempts: Attempts, sessions: Sessions, second: SecondFactor) -> None:
        self.ctx = ctx
        self.attempts = attempts
        self.sessions = sessions
        self.second = second

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.ctx.settings.reauth_minutes)

    def recent(self, principal: Principal) -> bool:
        at = principal.session.reauthenticated_at
        return at is not None and self.ctx.clock() - at <= self.window

    def methods(self, principal: Principal) -> list[str]:
        account = principal.account
        return [
            name
            for name, has in (
                ("current_password", bool(account.password_hash)),
                ("google_id_token", bool(account.google_subject)),
                ("totp_code", account.totp_enabled),
            )
            if has
        ]

    def require(self, principal: Principal, proof: Proof, ip: str, user_agent: str) -> str:
        """Pass when the holder proved themselves now or within the window; else 403 (or 429).

        A proof that is sent is always checked, even within the window: a wrong password is refused.
        Returns how the holder proved it ("password", "google", "totp" or "recent").
        """
        if not proof.given:
            if self.recent(principal):
                return "recent"
            raise self._required(principal)
        account = principal.account
        if proof.current_password and account.password_hash:
            method = self._password(principal, proof.current_password, ip, user_agent)
        elif proof.google_id_token and account.google_subject:
            method = self._google(principal, proof.google_id_token)
        elif proof.totp_code and account.totp_enabled:
            method = self._totp(principal, proof.totp_code, ip, user_agent)
        else:
            raise self._required(principal)
        self.sessions.mark_reauthenticated(principal)
        self.ctx.event(account.id, "reauthenticated", ip, user_agent, method=method)
        return method

    def _required(self, principal: Principal) -> ReauthenticationRequired:
        methods = self.methods(principal)
        minutes = int(self.window.total_seconds() // 60)
        return ReauthenticationRequired(
            "reauthentication-required",
            f"Confirm it is you: send one of {', '.join(methods) or 'current_password'}. "
            f"It then counts for {minutes} minutes.",
            methods=methods,
        )

    def _password(self, principal: Principal, password: str, ip: str, user_agent: str) -> str:
        account = principal.account
        attempt = self.attempts.reserve(account.email, ip)
        if not self.ctx.hasher.verify(password, account.password_hash):
            attempt.failed(account.id, "reauthentication", ip, user_agent)
            raise ReauthenticationRequired(
                "invalid-current-password", "The current password is wrong.", title="Not changed"
            )
        attempt.succeeded()
        return "password"

    def _google(self, principal: Principal, id_token: str) -> str:
        identity = self.ctx.google.verify(id_token)
        if identity.subject != principal.account.google_subject:
            raise ReauthenticationRequired(
                "reauthentication-mismatch", "This Google identity is not the one linked to the account."
            )
        if self.ctx.clock() - identity.auth_time > self.window:
            raise ReauthenticationRequired(
                "reauthentication-stale", "Sign in with Google again: that Google sign-in is not recent."
            )
        return "google"

    def _totp(self, principal: Principal, code: str, ip: str, user_agent: str) -> str:
        account = principal.account
        attempt = self.attempts.reserve(account.email, ip)
        if not self.second.accept_totp(account, code):
            attempt.failed(account.id, "reauthentication_second_factor", ip, user_agent)
            raise ReauthenticationRequired("invalid-mfa-code", "The code is not valid.")
        attempt.succeeded()
        return "totp"
