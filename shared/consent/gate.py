"""What the mailer asks before it sends a marketing mail (P18): consent, no objection, active account.

The rule lives where mail is sent (functions/mailer), so no caller can skip it: a mail whose category
is "marketing" is sent only when its `account_id` names an account that is active, has consented at
send time and has not objected (`account.objection["marketing"]`); a marketing mail without an account
is refused. An admitted mail gets the account's one-click unsubscribe link (RFC 8058), which the
SMTP mailer puts in `List-Unsubscribe` and in the text body. Transactional mail is never asked about.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from shared.adapters.mail import Mail
from shared.consent.model import MARKETING
from shared.consent.stores import ConsentStore
from shared.consent.tokens import UnsubscribeTokens


class Accounts(Protocol):
    def get(self, account_id: str) -> Any: ...


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/privacy/unsubscribe/{token}"


def refusal(consents: ConsentStore, accounts: Accounts, account_id: str | None) -> str | None:
    """Why a marketing mail may not go to `account_id` now, or None when it may."""
    if not account_id:
        return "no-account"
    account = accounts.get(account_id)
    if account is None:
        return "no-account"
    if getattr(account, "status", "active") != "active":
        return "not-active"
    objection = getattr(account, "objection", None)
    if isinstance(objection, dict) and objection.get("marketing"):
        return "objection"
    if not consents.current(account_id).marketing:
        return "no-consent"
    return None


class MarketingGate:
    def __init__(
        self, consents: ConsentStore, accounts: Accounts, tokens: UnsubscribeTokens, public_base_url: str
    ) -> None:
        self.consents = consents
        self.accounts = accounts
        self.tokens = tokens
        self.public_base_url = public_base_url

    def admit(self, mail: Mail) -> tuple[Mail | None, str]:
        """(the mail to send, "sent") or (None, the reason it is not sent)."""
        if mail.category != MARKETING:
            return mail, "transactional"
        reason = refusal(self.consents, self.accounts, mail.account_id)
        if reason is not None:
            return None, reason
        assert mail.account_id is not None
        url = unsubscribe_url(self.public_base_url, self.tokens.issue(mail.account_id))
        return replace(mail, unsubscribe_url=url), "admitted"
