"""`consent-sync` jobs: carry an account's marketing answer to HubSpot and Intercom (P18, P24).

A job names only the account. Its handler reads the answer *now* (consent, no objection, account
active: the same rule as the mailer's gate), so it is idempotent and order-proof: a redelivered or
late job sets the processors to the current answer, never to an old one. Outcomes per processor:
done / not_found (the processor does not know the person) are success; "retry" (429, 5xx, network)
raises after every processor was tried, so Pub/Sub redelivers with backoff and, after
`dead_letter_after` attempts, moves the job to `consent-sync-dead-letter`; a processor that is not
configured is skipped and logged; any other failure (a 4xx that no retry fixes) pages (log.alert)
and is not retried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.consent.gate import Accounts, refusal
from shared.consent.stores import ConsentStore
from shared.observability import get_logger
from shared.processors import Subject
from shared.processors.base import NOT_CONFIGURED, ConsentSync

log = get_logger(__name__)


class ConsentSyncJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")


class ConsentSyncIncomplete(RuntimeError):
    """A processor asked to be tried again: the push is answered 5xx and Pub/Sub redelivers."""


class ConsentSyncer:
    def __init__(
        self, consents: ConsentStore, accounts: Accounts, adapters: Callable[[], Sequence[ConsentSync]]
    ) -> None:
        self.consents = consents
        self.accounts = accounts
        self.adapters = adapters

    def handle(self, job: ConsentSyncJob) -> dict[str, str]:
        """Each processor's status; raises `ConsentSyncIncomplete` when one should be tried again."""
        account: Any = self.accounts.get(job.account_id)
        if account is None:
            log.info("consent sync skipped: the account is gone (its erasure reaches the processors)")
            return {}
        marketing = refusal(self.consents, self.accounts, job.account_id) is None
        subject = Subject(account_id=job.account_id, email=account.email)
        statuses: dict[str, str] = {}
        retry: list[str] = []
        for adapter in self.adapters():
            outcome = adapter.sync_consent(subject, marketing)
            statuses[adapter.name] = outcome.status
            if outcome.succeeded:
                continue
            if outcome.status == "retry":
                retry.append(adapter.name)
            elif outcome.detail.startswith(NOT_CONFIGURED):
                statuses[adapter.name] = "skipped"
                log.warning("consent sync skipped: processor not configured", processor=adapter.name)
            else:
                log.alert(
                    "consent sync failed",
                    alert_name="consent-sync-failed",
                    processor=adapter.name,
                    detail=outcome.detail,
                )
        log.info("consent synced", marketing=marketing, **{name.lower(): status for name, status in statuses.items()})
        if retry:
            raise ConsentSyncIncomplete(f"to retry: {', '.join(retry)}")
        return statuses
