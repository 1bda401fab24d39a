"""Credentials (P25): change or reset the password, change the login email, the second factor.

Every change here but the reset (which proves the mailbox, and the second factor when it is on)
first passes the step-up policy (`shared/identity/reauth.py`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.errors import Conflict, Forbidden, InvalidCredentials, InvalidToken, NotFound
from shared.identity import mails
from shared.identity.attempts import Attempts
from shared.identity.context import IdentityContext
from shared.identity.model import Principal
from shared.identity.passwords import PasswordRejected, check_policy
from shared.identity.reauth import Proof, StepUp
from shared.identity.registration import CHANGE_EMAIL, password_refused
from shared.identity.second_factor import SecondFactor, mfa_refused
from shared.identity.sessions import Sessions
from shared.observability import get_logger

log = get_logger(__name__)

RESET_PASSWORD = "reset_password"  # noqa: S105 (a token purpose, not a password)
PASSWORD_RESET_REQUEST = "password_reset"  # noqa: S105 (a request kind)


class Credentials:
    def __init__(
        self, ctx: IdentityContext, attempts: Attempts, step_up: StepUp, second: SecondFactor, sessions: Sessions
    ) -> None:
        self.ctx = ctx
        self.attempts = attempts
        self.step_up = step_up
        self.second = second
        self.sessions = sessions

    # -- password --------------------------------------------------------------------------------------
    def change_password(self, principal: Principal, proof: Proof, new: str, ip: str, user_agent: str) -> int:
        account = principal.account
        if not account.password_hash:
            raise Forbidden("password-account-required", "This account signs in with Google only.")
        self.step_up.require(principal, proof, ip, user_agent)
        try:
            check_policy(new, account.email)
        except PasswordRejected as exc:
            raise password_refused(exc, "new_password") from None
        now = self.ctx.clock()
        self.ctx.stores.accounts.update(
            account.id,
            {"password_hash": self.ctx.hasher.hash(new), "password_disabled_reason": None, "updated_at": now},
        )
        ended = self.sessions.revoke_all(account.id, keep=principal.session.id)
        self.ctx.event(account.id, "password_changed", ip, user_agent, sessions_ended=ended)
        self.ctx.send(mails.password_changed(account.email, account.first_name))
        return ended

    def request_reset(self, email: str) -> None:
        """Queue a reset link; the answer never depends on the address (the auth worker does the rest)."""
        self.ctx.enqueue(PASSWORD_RESET_REQUEST, {"email": email})

    def handle_reset_request(self, email: str) -> None:
        """In the auth worker: mail a single-use reset link when the address has an active account."""
        account = self.ctx.stores.accounts.find_by_email(email)
        if account is None or account.status != "active":
            return
        minutes = self.ctx.settings.reset_token_minutes
        now = self.ctx.clock()
        token = self.ctx.stores.tokens.issue(account.id, RESET_PASSWORD, now + timedelta(minutes=minutes), now)
        self.ctx.send(mails.password_reset(account.email, account.first_name, self.ctx.link_base, token, minutes))
        self.ctx.event(account.id, "password_reset_requested")

    def reset_password(
        self,
        token: str,
        new: str,
        ip: str,
        user_agent: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> None:
        """The reset link proves the mailbox; an account with the second factor also needs a code.

        The token is spent only by a reset that succeeds: a refused password or code leaves it usable.
        """
        now = self.ctx.clock()
        data = self.ctx.stores.tokens.peek(token, {RESET_PASSWORD}, now)
        account = self.ctx.stores.accounts.get(data["account_id"])
        if account is None:
            raise InvalidToken("invalid-token", "This link is invalid or was already used.")
        try:
            check_policy(new, account.email)
        except PasswordRejected as exc:
            raise password_refused(exc, "new_password") from None
        if account.totp_enabled:
            attempt = self.attempts.reserve(account.email, ip)
            try:
                proven = self.second.check(account, totp_code, recovery_code, ip, user_agent)
            except InvalidCredentials:
                attempt.withdraw()
                raise
            if not proven:
                attempt.failed(account.id, "reset_second_factor", ip, user_agent)
                raise mfa_refused()
        self.ctx.stores.tokens.consume(token, {RESET_PASSWORD}, now)  # one reset per link, even in a race
        # The reset link proved control of the mailbox, so the address counts as verified.
        self.ctx.stores.accounts.update(
            account.id,
            {
                "password_hash": self.ctx.hasher.hash(new),
                "password_disabled_reason": None,
                "email_verified": True,
                "updated_at": now,
            },
        )
        ended = self.sessions.revoke_all(account.id)
        keys = self.attempts.keys(account.email, ip)
        self.ctx.stores.throttle.release(keys, now, clear=keys[:1])  # a locked-out holder may sign in again
        self.ctx.event(account.id, "password_reset", ip, user_agent, sessions_ended=ended)
        self.ctx.send(mails.password_changed(account.email, account.first_name))

    # -- login email -----------------------------------------------------------------------------------
    def change_email(self, principal: Principal, new_email: str, ip: str, user_agent: str) -> None:
        """Mail a confirmation link to the new address (the caller has passed the step-up)."""
        account = principal.account
        if self.ctx.stores.accounts.find_by_email(new_email) is not None:
            # Say nothing of whether the address is taken: the confirmation simply cannot succeed.
            log.info("email change to a taken address", account_id=account.id)
        minutes = self.ctx.settings.verification_token_minutes
        now = self.ctx.clock()
        token = self.ctx.stores.tokens.issue(
            account.id, CHANGE_EMAIL, now + timedelta(minutes=minutes), now, email=new_email
        )
        self.ctx.stores.accounts.update(account.id, {"pending_email": new_email, "updated_at": now})
        account.pending_email = new_email
        self.ctx.send(mails.email_change(new_email, account.first_name, self.ctx.link_base, token, minutes))
        self.ctx.send(mails.email_change_notice(account.email, account.first_name, new_email))
        self.ctx.event(account.id, "email_change_requested", ip, user_agent)

    # -- second factor ---------------------------------------------------------------------------------
    def totp_enroll(self, principal: Principal, proof: Proof, ip: str, user_agent: str) -> dict[str, str]:
        account = principal.account
        if not account.password_hash:
            raise Forbidden("password-account-required", "Google accounts use Google 2-Step Verification.")
        if account.totp_enabled:
            raise Conflict("totp-already-enabled", "Disable the second factor first.", title="Already enabled")
        self.step_up.require(principal, proof, ip, user_agent)
        secret, sealed, uri = self.second.new_secret(account)
        self.ctx.stores.accounts.update(account.id, {"totp_secret": sealed, "totp_last_step": 0})
        return {"secret": secret, "otpauth_uri": uri}

    def totp_activate(self, principal: Principal, code: str, proof: Proof, ip: str, user_agent: str) -> list[str]:
        account = principal.account
        if account.totp_enabled:
            raise Conflict("totp-already-enabled", "The second factor is already on.", title="Already enabled")
        if not account.totp_secret:
            raise Conflict("totp-not-enrolled", "Start with POST /auth/mfa/totp/enroll.", title="Not enrolled")
        self.step_up.require(principal, proof, ip, user_agent)
        attempt = self.attempts.reserve(account.email, ip)
        if not self.second.accept_totp(account, code):
            attempt.failed(account.id, "totp_activation", ip, user_agent)
            raise mfa_refused()
        attempt.succeeded()
        codes, digests = self.second.new_recovery_codes()
        self.ctx.stores.accounts.update(account.id, {"totp_enabled": True, "recovery_codes": digests})
        self.ctx.event(account.id, "totp_enabled", ip, user_agent)
        self.ctx.send(mails.second_factor_changed(account.email, account.first_name, enabled=True))
        return codes

    def totp_disable(self, principal: Principal, proof: Proof, ip: str, user_agent: str) -> None:
        account = principal.account
        self.step_up.require(principal, proof, ip, user_agent)
        self._clear_second_factor(account.id)
        self.ctx.event(account.id, "totp_disabled", ip, user_agent)
        self.ctx.send(mails.second_factor_changed(account.email, account.first_name, enabled=False))

    def remove_second_factor(self, account_id: str, actor: str, reason: str) -> dict[str, Any]:
        """Staff path for a holder who lost their second factor (the admin route audits the call)."""
        account = self.ctx.stores.accounts.get(account_id)
        if account is None:
            raise NotFound("not-found", "No such account.")
        if not account.totp_enabled and not account.totp_secret:
            raise Conflict("totp-not-enabled", "This account has no second factor.")
        self._clear_second_factor(account.id)
        ended = self.sessions.revoke_all(account.id)
        self.ctx.event(account.id, "totp_removed_by_staff", actor=actor, reason=reason, sessions_ended=ended)
        self.ctx.send(mails.second_factor_removed_by_staff(account.email, account.first_name))
        return {"account_id": account.id, "totp_enabled": False, "sessions_ended": ended}

    def _clear_second_factor(self, account_id: str) -> None:
        self.ctx.stores.accounts.update(
            account_id, {"totp_enabled": False, "totp_secret": None, "recovery_codes": [], "totp_last_step": 0}
        )
