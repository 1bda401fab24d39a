"""The consent use cases (P18): read, change, prove and withdraw marketing consent.

Every change is kept in the history (when, what, source, actor): the proof of consent GDPR Art. 7(1)
asks for, exported with the account. A change that may differ from what the marketing processors
hold is queued as a `consent-sync` job (shared/consent/sync.py), retried until it lands. Raises
`shared/errors.py` errors only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.consent.model import SOURCES, SYNC_TOPIC, ConsentChange, Source
from shared.consent.stores import ACCOUNT_ID, ConsentStore
from shared.consent.tokens import UnsubscribeTokens
from shared.errors import InvalidInput, InvalidToken, Unavailable
from shared.observability import get_logger

log = get_logger(__name__)

# publish(topic, payload): returns once Pub/Sub stored the message.
Publish = Callable[[str, dict[str, Any]], object]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConsentService:
    def __init__(
        self,
        store: ConsentStore,
        *,
        publish: Publish | None = None,
        tokens: Callable[[], UnsubscribeTokens] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self._publish = publish
        self._tokens = tokens
        self.clock = clock

    def current(self, account_id: str) -> dict[str, Any]:
        """`{marketing, changed_at, source}`; no record is no consent."""
        return self.store.current(account_id).view()

    def history(self, account_id: str) -> list[dict[str, Any]]:
        """Every change, oldest first: `{marketing, at, source, by}`."""
        return [change.view() for change in self.store.history(account_id)]

    def change(self, account_id: str, marketing: bool, source: Source, actor: str | None = None) -> dict[str, Any]:
        """Record the holder's answer (kept in the history even when it repeats the current one)."""
        if source not in SOURCES:
            raise InvalidInput("validation-error", f"source must be one of {', '.join(SOURCES)}")
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            raise InvalidInput("validation-error", "not an account id")
        change = ConsentChange(account_id, bool(marketing), self.clock(), source, actor)
        before = self.store.record(change)
        log.info("marketing consent changed", source=source, marketing=change.marketing, by=change.by)
        # A new account saying no has nothing to withdraw anywhere; every other change is carried to
        # the processors (also a repeated one: it re-asserts the answer, and the sync is idempotent).
        if not (source == "signup" and not change.marketing and before.changed_at is None):
            self._queue_sync(account_id)
        return self.current(account_id)

    def unsubscribe(self, token: str) -> dict[str, Any]:
        """The one-click unsubscribe (RFC 8058): no session, the signed token names the account."""
        account_id = self.account_of(token)
        return self.change(account_id, False, "unsubscribe-link")

    def account_of(self, token: str) -> str:
        """The account a signed unsubscribe token names (`InvalidToken` when forged); changes nothing."""
        if self._tokens is None:
            raise InvalidToken("invalid-token", "This unsubscribe link is not valid.")
        return self._tokens().verify(token)

    def resync(self, account_id: str) -> None:
        """Pass the account's effective answer on again: after anything that changes it without a consent
        change (an objection, a cancellation, a reactivation). The sync reads the answer when it runs."""
        self._queue_sync(account_id)

    def _queue_sync(self, account_id: str) -> None:
        if self._publish is None:
            return
        try:
            self._publish(SYNC_TOPIC, {"account_id": account_id})
        except Exception as exc:  # the answer is recorded; the caller retries and the sync is queued then
            log.error("consent sync not queued", error=type(exc).__name__)
            raise Unavailable("Your choice is saved but could not be passed on yet; try again shortly.") from exc
