"""One-click unsubscribe tokens (RFC 8058): `v1.<account id>.<HMAC-SHA256>` in the URL path.

The MAC, keyed by `UNSUBSCRIBE_SIGNING_KEY`, covers a purpose label and the account id, so a token
can only unsubscribe the account it names, and a forged or altered one is refused. It never expires:
all it can ever do is say "no more marketing" for that one account again (idempotent), and a mail
client must be able to use it months after the mail arrived. It is made by the mailer as it sends a
marketing mail and never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.consent.stores import ACCOUNT_ID
from shared.errors import InvalidToken

PURPOSE = b"wizyvision/unsubscribe/v1\x00"
VERSION = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class UnsubscribeTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the unsubscribe signing key needs at least 32 bytes")
        self._key = key

    def _mac(self, account_id: str) -> str:
        return _b64(hmac.new(self._key, PURPOSE + account_id.encode(), hashlib.sha256).digest())

    def issue(self, account_id: str) -> str:
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            raise ValueError("not an account id")
        return f"{VERSION}.{account_id}.{self._mac(account_id)}"

    def verify(self, token: str) -> str:
        """The account id the token was issued for; `InvalidToken` when it is forged or altered."""
        version, _, rest = (token or "").partition(".")
        account_id, _, mac = rest.rpartition(".")
        if version != VERSION or not ACCOUNT_ID.fullmatch(account_id) or not mac:
            raise InvalidToken("invalid-token", "This unsubscribe link is not valid.")
        if not hmac.compare_digest(mac.encode(), self._mac(account_id).encode()):
            raise InvalidToken("invalid-token", "This unsubscribe link is not valid.")
        return account_id
