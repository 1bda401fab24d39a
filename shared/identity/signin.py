"""Password sign-in (P1, P16, P22, P25): throttled before bcrypt, second factor when it is on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from shared.errors import Conflict, Forbidden, InvalidCredentials
from shared.identity.attempts import Attempts
from shared.identity.context import IdentityContext
from shared.identity.model import Account, SessionRecord
from shared.identity.second_factor import SecondFactor, mfa_refused
from shared.identity.sessions import Sessions

LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="signin-lookup")
SIGNABLE = frozenset({"active", "cancelled"})  # a cancelled account may sign in to reactivate (P19)


def invalid_credentials() -> InvalidCredentials:
    return InvalidCredentials(
        "invalid-credentials",
        "The email or password is incorrect. If you have just signed up, confirm your address first with the "
        "link we sent.",
    )


class PasswordSignin:
    def __init__(self, ctx: IdentityContext, attempts: Attempts, second: SecondFactor, sessions: Sessions) -> None:
        self.ctx = ctx
        self.attempts = attempts
        self.second = second
        self.sessions = sessions

    def signin(
        self,
        email: str,
        password: str,
        ip: str,
        user_agent: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
        reactivate: bool = False,
    ) -> tuple[str, SessionRecord, Account]:
        # The account is read while the attempt is reserved (two independent round trips at once); it is
        # judged only once the attempt is counted.
        lookup = LOOKUPS.submit(self.ctx.stores.accounts.find_by_email, email)
        try:
            attempt = self.attempts.reserve(email, ip)  # counted before anything is judged
        except BaseException:
            lookup.cancel()
            raise
        account = lookup.result()
        usable = account is not None and account.status in SIGNABLE
        stored = account.password_hash if account is not None and usable else None
        if not self.ctx.hasher.verify(password, stored):  # a dummy check when there is no hash
            attempt.failed(account.id if account else None, "password", ip, user_agent)
            raise invalid_credentials()
        assert account is not None and stored is not None
        if not account.email_verified:
            attempt.withdraw()
            raise Forbidden("email-not-verified", "Confirm your email address first: follow the link we sent.")
        if account.totp_enabled:
            try:
                proven = self.second.check(account, totp_code, recovery_code, ip, user_agent)
            except InvalidCredentials:  # no code sent: ask for it; this attempt judged nothing
                attempt.withdraw()
                raise
            if not proven:
                attempt.failed(account.id, "second_factor", ip, user_agent)
                raise mfa_refused()
        try:
            self.sessions.reactivation(account, reactivate, ip, user_agent)
        except Conflict:  # cancelled: the password was right, so the attempt is taken back before asking
            attempt.succeeded()
            raise
        with self.ctx.stores.unit_of_work():  # the attempt taken back and the session: one commit
            attempt.succeeded()
            if self.ctx.hasher.needs_rehash(stored):
                self.ctx.stores.accounts.update(account.id, {"password_hash": self.ctx.hasher.hash(password)})
            return self.sessions.open(account, "password", ip, user_agent)
