"""The identity use cases, wired over one context: what the auth function (and every other function's
authenticator) calls.

Each use case is a short module of its own:

=================  ==============================================================================
module             use cases
=================  ==============================================================================
registration       sign up, confirm the address with the sign-up's password, resend, email change
signin             password sign-in with the throttle and the second factor
google             Google sign-in and linking (mailed to the owner)
sessions           open, authenticate, list, revoke, sign out
reauth             the step-up policy for sensitive actions
credentials        change and reset the password, change the email, the second factor
profile            names and billing contact, security events
requests           the auth worker's queued requests (reset and resend links)
=================  ==============================================================================

Promises kept: P1, P2, P3, P15, P16, P21, P22, P25.
"""

from __future__ import annotations

from typing import Any

from shared.errors import NotFound
from shared.identity.attempts import Attempts
from shared.identity.context import IdentityContext, utcnow
from shared.identity.credentials import PASSWORD_RESET_REQUEST, Credentials
from shared.identity.google import GoogleSignin
from shared.identity.model import Account, Principal
from shared.identity.profile import Profile
from shared.identity.reauth import StepUp
from shared.identity.registration import VERIFICATION_RESEND, Registration
from shared.identity.second_factor import SecondFactor
from shared.identity.sessions import Sessions
from shared.identity.signin import PasswordSignin

__all__ = ["IdentityService", "utcnow"]


class IdentityService:
    def __init__(self, ctx: IdentityContext) -> None:
        self.ctx = ctx
        attempts = Attempts(ctx)
        second = SecondFactor(ctx)
        self.sessions = Sessions(ctx)
        self.step_up = StepUp(ctx, attempts, self.sessions, second)
        self.registration = Registration(ctx, attempts)
        self.signin = PasswordSignin(ctx, attempts, second, self.sessions)
        self.google = GoogleSignin(ctx, self.sessions)
        self.credentials = Credentials(ctx, attempts, self.step_up, second, self.sessions)
        self.profile = Profile(ctx, self.step_up, self.credentials)
        # The auth worker's queued requests: one entry per kind (see functions/auth_worker).
        self.requests: dict[str, Any] = {
            PASSWORD_RESET_REQUEST: self.credentials.handle_reset_request,
            VERIFICATION_RESEND: self.registration.handle_resend,
        }

    def account(self, account_id: str) -> Account:
        """An account by id (staff paths), or NotFound."""
        account = self.ctx.stores.accounts.get(account_id)
        if account is None:
            raise NotFound("not-found", "No such account.")
        return account

    def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token (every function's authenticator)."""
        return self.sessions.authenticate(token)

    def handle_request(self, kind: str, payload: dict[str, Any]) -> None:
        handler = self.requests.get(kind)
        if handler is None:
            raise ValueError(f"unknown auth request kind {kind!r}")
        handler(**payload)
