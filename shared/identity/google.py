"""Google sign-in (P2, P3): the link is keyed on the Google subject; linking to an existing account is mailed."""

from __future__ import annotations

from typing import Any

from shared.errors import Conflict, NotAuthenticated
from shared.identity import mails
from shared.identity.context import IdentityContext
from shared.identity.model import Account, SessionRecord
from shared.identity.sessions import Sessions
from shared.identity.signin import SIGNABLE, invalid_credentials


class GoogleSignin:
    def __init__(self, ctx: IdentityContext, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def signin(
        self, id_token: str, ip: str, user_agent: str, reactivate: bool = False
    ) -> tuple[str, SessionRecord, Account]:
        identity = self.ctx.google.verify(id_token)
        fresh = self.ctx.new_account(
            identity.email,
            identity.first_name,
            identity.last_name,
            google_subject=identity.subject,
            firebase_uid=identity.firebase_uid,
        )
        now = fresh.created_at

        def link(existing: Account) -> dict[str, Any]:
            if existing.google_subject and existing.google_subject != identity.subject:
                raise Conflict("identity-conflict", "This address belongs to another Google identity.")
            changes: dict[str, Any] = {
                "google_subject": identity.subject,
                "firebase_uid": identity.firebase_uid,
                "updated_at": now,
                "outcome": "linked",
            }
            if not existing.email_verified:
                # Google proved the mailbox; whoever set the unverified password did not. The password is
                # disabled until a reset, so a pre-registered account cannot be taken over.
                changes.update(
                    email_verified=True,
                    password_hash=None,
                    password_disabled_reason="unverified_email",  # noqa: S106
                    outcome="linked_password_disabled",
                )
            return changes

        outcome, account_id = self.ctx.stores.accounts.link_google(identity.subject, fresh, link)
        if outcome == "created":
            self.ctx.stores.pending.clear_address(identity.email)  # Google proved the mailbox: no sign-up waits
        if outcome != "known":
            self.ctx.event(account_id, f"google_{outcome}", ip, user_agent)
        account = self.ctx.stores.accounts.get(account_id)
        if account is None:
            raise NotAuthenticated("unauthenticated", "The account linked to this Google identity no longer exists.")
        if outcome.startswith("linked"):
            self.ctx.send(mails.google_linked(account.email, account.first_name, ip, user_agent, self.ctx.link_base))
        if account.status not in SIGNABLE:
            raise invalid_credentials()
        self.sessions.reactivation(account, reactivate, ip, user_agent)
        return self.sessions.open(account, "google", ip, user_agent, authenticated_at=identity.auth_time)
