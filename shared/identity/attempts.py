"""Every password, TOTP or recovery-code check goes through here first (P22).

`reserve` counts the attempt on the address's key and on the network's key in one transaction,
before anything is judged; a locked key answers Throttled (429) and nothing is judged for it. A
success takes its attempt back (`Attempt.succeeded`); a failure stays counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.identity.context import IdentityContext
from shared.observability import get_logger

log = get_logger(__name__)


@dataclass
class Attempt:
    ctx: IdentityContext
    keys: list[str]
    at: object
    locked: bool  # this attempt locked a key: the next ones are refused until it expires

    def succeeded(self) -> None:
        """The address's key starts afresh; the network's key forgets this one attempt."""
        self.ctx.stores.throttle.release(self.keys, self.at, clear=[self.keys[0]])  # type: ignore[arg-type]

    def withdraw(self) -> None:
        """This attempt judged nothing worth counting (a correct password that still needs a code)."""
        self.ctx.stores.throttle.release(self.keys, self.at, clear=[])  # type: ignore[arg-type]

    def failed(self, account_id: str | None, reason: str, ip: str, user_agent: str) -> None:
        if account_id is not None:
            self.ctx.event(account_id, "signin_failed", ip, user_agent, reason=reason)
            if self.locked:
                self.ctx.event(account_id, "signin_locked", ip, user_agent)
        if self.locked:
            log.warning("sign-in key locked", account_id=account_id)


class Attempts:
    def __init__(self, ctx: IdentityContext) -> None:
        self.ctx = ctx

    def keys(self, email: str, ip: str) -> list[str]:
        return [self.ctx.digest("email", email.strip().lower()), self.ctx.digest("ip", ip)]

    def reserve(self, email: str, ip: str) -> Attempt:
        keys = self.keys(email, ip)
        now = self.ctx.clock()
        locked = self.ctx.stores.throttle.reserve(keys, now)
        return Attempt(self.ctx, keys, now, locked)
