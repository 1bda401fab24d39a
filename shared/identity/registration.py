"""Sign-up and address confirmation (P15, P16): an account exists only once its address is proven.

A sign-up creates no account: it keeps a *pending sign-up* (names and the password hash of the
person who typed them) and mails a link to the address. The link's page asks for that same
password: confirming proves the mailbox, and the password proves it is the same person who signed
up. So a password typed by someone who does not hold the mailbox never becomes active, whatever
links the owner clicks and in whatever order, and a sign-up never changes an existing account.
"""

from __future__ import annotations

from datetime import timedelta

from shared.errors import Conflict, InvalidCredentials, InvalidToken, PasswordRefused
from shared.identity import mails
from shared.identity.attempts import Attempts
from shared.identity.context import IdentityContext
from shared.identity.model import Account, PendingSignup
from shared.identity.passwords import PasswordRejected, check_policy
from shared.observability import get_logger

log = get_logger(__name__)

CHANGE_EMAIL = "change_email"
VERIFICATION_RESEND = "verification_resend"


def password_refused(exc: PasswordRejected, field: str = "password") -> PasswordRefused:
    return PasswordRefused(
        "weak-password", str(exc), errors=[{"field": field, "message": str(exc), "code": exc.reason}]
    )


class Registration:
    def __init__(self, ctx: IdentityContext, attempts: Attempts) -> None:
        self.ctx = ctx
        self.attempts = attempts

    @property
    def _lifetime(self) -> timedelta:
        return timedelta(minutes=self.ctx.settings.verification_token_minutes)

    def signup(
        self,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        ip: str,
        user_agent: str,
        marketing_consent: bool = False,
    ) -> None:
        """The same work and the same answer whether or not the address has an account (no enumeration):
        a password hash, one look-up, one write, one queued mail."""
        try:
            check_policy(password, email)
        except PasswordRejected as exc:
            raise password_refused(exc) from None
        password_hash = self.ctx.hasher.hash(password)
        now = self.ctx.clock()
        existing = self.ctx.stores.accounts.find_by_email(email)
        if existing is not None:
            self.ctx.event(existing.id, "signup_attempt_on_existing_account", ip, user_agent)
            self.ctx.send(mails.already_registered(existing.email, existing.first_name, self.ctx.link_base))
            return
        pending = PendingSignup(
            email=email,
            first_name=first_name,
            last_name=last_name,
            password_hash=password_hash,
            created_at=now,
            expires_at=now + self._lifetime,
            marketing_consent=marketing_consent,
        )
        token = self.ctx.stores.pending.add(pending)
        self._mail_link(pending, token)

    def _mail_link(self, pending: PendingSignup, token: str) -> None:
        minutes = self.ctx.settings.verification_token_minutes
        self.ctx.send(mails.verification(pending.email, pending.first_name, self.ctx.link_base, token, minutes))

    def resend(self, email: str) -> None:
        """Queue a new link; the answer never depends on the address (the auth worker does the rest)."""
        self.ctx.enqueue(VERIFICATION_RESEND, {"email": email})

    def handle_resend(self, email: str) -> None:
        """In the auth worker: a new link for the newest pending sign-up of the address, if any."""
        if self.ctx.stores.accounts.find_by_email(email) is not None:
            return
        renewed = self.ctx.stores.pending.renew(email, self.ctx.clock() + self._lifetime)
        if renewed is not None:
            token, pending = renewed
            self._mail_link(pending, token)

    def confirm(self, token: str, password: str, ip: str, user_agent: str) -> Account:
        """Confirm the address of a pending sign-up with the password chosen at sign-up: the account is made."""
        pending = self.ctx.stores.pending.get(token, self.ctx.clock())
        attempt = self.attempts.reserve(pending.email, ip)
        if not self.ctx.hasher.verify(password, pending.password_hash):
            attempt.failed(None, "signup_confirmation", ip, user_agent)
            raise InvalidCredentials(
                "signup-password-mismatch",
                "This is not the password chosen when signing up with this link. If you did not sign up with "
                "it, ignore it: use the link of your own sign-up, or reset your password.",
                title="Password does not match this sign-up",
            )
        attempt.succeeded()
        account = self.ctx.new_account(
            pending.email, pending.first_name, pending.last_name, password_hash=pending.password_hash
        )
        try:
            self.ctx.stores.accounts.create(account)
        except Conflict:
            self.ctx.stores.pending.clear_address(pending.email)
            raise Conflict(
                "email-taken", "This address already has an account: sign in, or reset its password."
            ) from None
        self.ctx.stores.pending.clear_address(pending.email)  # every other sign-up of the address is void
        self.ctx.event(account.id, "email_verified", ip, user_agent)
        if self.ctx.record_consent is not None:  # the sign-up's choice is the first entry of the history (P18)
            self.ctx.record_consent(account.id, pending.marketing_consent, "signup")
        log.info("account created", account_id=account.id)
        return account

    def confirm_email_change(self, token: str, ip: str = "", user_agent: str = "") -> Account:
        """The new address of a login change is proven: it becomes the login (P15)."""
        now = self.ctx.clock()
        data = self.ctx.stores.tokens.consume(token, {CHANGE_EMAIL}, now)
        account = self.ctx.stores.accounts.get(data["account_id"])
        if account is None:
            raise InvalidToken("invalid-token", "This link is invalid or was already used.")
        new_email = data["email"]
        self.ctx.stores.accounts.change_email(
            account.id, account.email, new_email, {"email_verified": True, "pending_email": None, "updated_at": now}
        )
        self.ctx.stores.pending.clear_address(new_email)
        self.ctx.event(account.id, "email_changed", ip, user_agent)
        account.email, account.email_verified, account.pending_email = new_email, True, None
        return account
