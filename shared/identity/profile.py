"""The profile (P15): names, billing contact, login email (rectification), and the security events (P22)."""

from __future__ import annotations

from typing import Any

from shared.identity.context import IdentityContext
from shared.identity.credentials import Credentials
from shared.identity.model import Account, Principal
from shared.identity.reauth import Proof, StepUp


class Profile:
    def __init__(self, ctx: IdentityContext, step_up: StepUp, credentials: Credentials) -> None:
        self.ctx = ctx
        self.step_up = step_up
        self.credentials = credentials

    def update(self, principal: Principal, changes: dict[str, Any], proof: Proof, ip: str, user_agent: str) -> Account:
        """Apply the changes; a new login email first passes the step-up, before anything is changed."""
        account = principal.account
        new_email = changes.pop("email", None)
        email_changes = bool(new_email) and new_email != account.email
        if email_changes:
            self.step_up.require(principal, proof, ip, user_agent)
        if changes:
            now = self.ctx.clock()
            self.ctx.stores.accounts.update(account.id, {**changes, "updated_at": now})
            for name, value in changes.items():
                setattr(account, name, value)
            account.updated_at = now
            self.ctx.event(account.id, "profile_updated", ip, user_agent, fields=sorted(changes))
        if email_changes:
            self.credentials.change_email(principal, new_email, ip, user_agent)
        return account

    def security_events(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "type": e.get("type"),
                "at": e["at"].isoformat(),
                "ip": e.get("ip", ""),
                "user_agent": e.get("user_agent", ""),
            }
            for e in self.ctx.stores.events.of_account(principal.account.id, limit)
        ]
