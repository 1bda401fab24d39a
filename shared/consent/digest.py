"""The monthly tips digest: the one marketing mail (P18), to every consenting active account.

Run by the scheduled `marketing-digest` function. Each account gets it at most once a calendar month
(UTC): the send is claimed as `marketing-digest:<YYYY-MM>:<account id>` in `idempotency_records`
(remembered 62 days), so a second run in the same month, or a retried one, sends nothing to an
account already served. The mail is queued with `category="marketing"` and the account id, so the
mailer checks consent, objection and status again at send time and adds the unsubscribe link.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.mail import Mail, Mailer
from shared.consent.gate import Accounts, refusal
from shared.consent.model import MARKETING
from shared.consent.stores import ConsentStore
from shared.idempotency import Completed, IdempotencyStore, InProgress
from shared.observability import get_logger

log = get_logger(__name__)

SCOPE = "marketing-digest"
REMEMBER = timedelta(days=62)
SUBJECT = "WizyVision tips for {month}"
TIPS = (
    "Tag photos as you take them: search finds them by tag, place and date.",
    "Share a collection with a link that expires, instead of sending files by mail.",
    "Turn on two-factor authentication in your security settings: it takes a minute.",
)


def digest_mail(account: Any, month: str) -> Mail:
    tips = "\n".join(f"- {tip}" for tip in TIPS)
    text = (
        f"Hello {account.first_name},\n\nA few tips to get more out of WizyVision this month:\n\n{tips}\n\n"
        "You get this mail because you said yes to marketing mail; change your mind any time in your privacy "
        "settings or with the link below."
    )
    return Mail(
        to=account.email, subject=SUBJECT.format(month=month), text=text, category=MARKETING, account_id=account.id
    )


class MarketingDigest:
    def __init__(
        self,
        consents: ConsentStore,
        accounts: Accounts,
        mailer: Mailer,
        idempotency: IdempotencyStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.consents = consents
        self.accounts = accounts
        self.mailer = mailer
        self.idempotency = idempotency
        self.clock = clock

    def run(self) -> dict[str, int]:
        now = self.clock()
        month, label = now.strftime("%Y-%m"), now.strftime("%B %Y")
        counts = {"sent": 0, "already_sent": 0, "not_eligible": 0, "failed": 0}
        for account_id in self.consents.consenting():
            if refusal(self.consents, self.accounts, account_id) is not None:
                counts["not_eligible"] += 1
                continue
            account = self.accounts.get(account_id)
            try:
                claim = self.idempotency.claim(f"{SCOPE}:{month}:{account_id}", scope=SCOPE, ttl=REMEMBER)
            except InProgress:
                counts["already_sent"] += 1  # another run is sending it right now
                continue
            if isinstance(claim, Completed):
                counts["already_sent"] += 1
                continue
            try:
                self.mailer.send(digest_mail(account, label))
            except Exception as exc:
                self.idempotency.fail(claim, type(exc).__name__)
                counts["failed"] += 1
                continue
            self.idempotency.complete(claim, {"sent": True}, ttl=REMEMBER)
            counts["sent"] += 1
        log.info("marketing digest run", month=month, **counts)
        return counts
