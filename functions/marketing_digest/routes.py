"""The route of the marketing-digest function: the scheduler's monthly call."""

from __future__ import annotations

import threading
from typing import Any

from functions.marketing_digest import schemas
from shared.bootstrap import settings
from shared.consent.digest import MarketingDigest
from shared.errors import Unavailable
from shared.http import Request, Router

router = Router()

_lock = threading.Lock()
_digest: MarketingDigest | None = None


def digest() -> MarketingDigest:
    global _digest
    if _digest is None:
        with _lock:
            if _digest is None:
                from shared.adapters.firestore import firestore_client
                from shared.adapters.mail import outbox_mailer
                from shared.consent.stores import FirestoreConsentStore
                from shared.idempotency import IdempotencyStore
                from shared.identity.service import utcnow
                from shared.identity.stores import FirestoreAccounts

                config = settings()
                db = firestore_client(config.project_id)
                _digest = MarketingDigest(
                    FirestoreConsentStore(db),
                    FirestoreAccounts(db),
                    outbox_mailer(config),
                    IdempotencyStore(db),
                    utcnow,
                )
    return _digest


@router.post("/marketing-digest", response=schemas.DigestRun, problems=(503,))
def run(_: Request) -> dict[str, Any]:
    """Send this month's tips digest to every consenting active account not yet served this month (P18)."""
    counts = digest().run()
    if counts["failed"]:
        raise Unavailable("Some digests could not be queued; run again.", retry_after=60)
    return counts
