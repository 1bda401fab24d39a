"""Account cancellation (P19): the holder (with a step-up) or staff cancel an account; it is kept until its purge.

Cancelling an account

- lets every live Stripe subscription run to the end of its paid period and not renew
  (`cancel_at_period_end`, stored on the billing account); this comes first, so a Stripe outage
  changes nothing and the call can simply be repeated;
- sets `status="cancelled"`, `cancelled_at` and the purge dates of the retention rule
  (`shared/retention/policy.py`: `account_retention_months` after the later of last use and the
  cancellation, the warning mail `retention_warning_days` before), in one transaction;
- ends every session (a cancelled account cannot authenticate either);
- stops every processing but retention: the telemetry aggregator archives nothing more for a
  cancelled account, and the mail layer sends it no marketing because `status` is no longer
  "active"; the processors that send marketing (HubSpot, Intercom) are told once that it stops
  (`marketing_stopped`: a consent-sync job, which reads the effective answer, "no", when it runs);
- records a security event `account_cancelled` (staff calls are also in the audit log: the admin
  function's audit hook, or the CLI) and mails the holder the purge date, and that signing in before
  it reactivates the account (the identity use cases do the reactivation).

It is idempotent: cancelling a cancelled account answers the same purge date and does nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.adapters.mail import Mailer
from shared.config import Settings
from shared.errors import Conflict, NotFound
from shared.identity.model import Account, Principal
from shared.identity.reauth import Proof
from shared.identity.service import IdentityService
from shared.identity.stores import AccountStore
from shared.observability import get_logger
from shared.privacy import mails
from shared.retention.policy import account_purge_at, warning_at

log = get_logger(__name__)

ACTIVE, CANCELLED = "active", "cancelled"
HOLDER = "holder"


class SubscriptionEnder(Protocol):
    """What cancellation needs of billing (`BillingService`)."""

    def end_subscriptions_at_period_end(self, account_id: str) -> list[dict[str, Any]]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Cancellation:
    def __init__(
        self,
        *,
        settings: Settings,
        accounts: AccountStore,
        identity: Callable[[], IdentityService],
        billing: Callable[[], SubscriptionEnder],
        mailer: Mailer,
        clock: Callable[[], datetime] = utcnow,
        marketing_stopped: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        # A cancelled account gets no marketing: the processors that send it are told (P18, P19).
        self._marketing_stopped = marketing_stopped
        self._identity = identity
        self._billing = billing  # built on first use: only a cancellation touches Stripe
        self.mailer = mailer
        self.clock = clock

    def cancel_own(self, principal: Principal, proof: Proof, ip: str, user_agent: str) -> dict[str, Any]:
        """The holder cancels their own account: a step-up first (P25), else ReauthenticationRequired (403)."""
        self._identity().step_up.require(principal, proof, ip, user_agent)
        return self.cancel(principal.account.id, HOLDER, "", principal.session.id, ip=ip, user_agent=user_agent)

    def cancel(
        self,
        account_id: str,
        by: str,
        reason: str,
        principal_session_id: str | None = None,
        *,
        ip: str = "",
        user_agent: str = "",
    ) -> dict[str, Any]:
        """Cancel the account; `by` is "holder", "staff:<account id>" or "cli:<login>" (the reason is audited
        by the caller). Answers {status, cancelled_at, purge_at}; the same for an account already cancelled."""
        account = self.accounts.get(account_id) if account_id else None
        if account is None:
            raise NotFound("not-found", "No such account.")
        if account.status == CANCELLED:
            return self._answer(account)
        self._refuse_unless_active(account)
        subscriptions = self._billing().end_subscriptions_at_period_end(account_id)
        now = self.clock()
        months, warning_days = self.settings.account_retention_months, self.settings.retention_warning_days

        def decide(current: Account) -> dict[str, Any] | None:
            if current.status != ACTIVE:
                return None
            purge_at = account_purge_at(current.last_active_at, now, current.created_at, months)
            return {
                "status": CANCELLED,
                "cancelled_at": now,
                "purge_at": purge_at,
                "purge_warning_at": warning_at(purge_at, warning_days),
                "updated_at": now,
            }

        account, changed = self.accounts.transition(account_id, decide)
        if not changed:  # a concurrent call got there first
            if account.status == CANCELLED:
                return self._answer(account)
            self._refuse_unless_active(account)
        identity = self._identity()
        ended = identity.sessions.revoke_all(account_id)
        details: dict[str, Any] = {"by": by.split(":", 1)[0], "sessions_ended": ended}
        if principal_session_id:
            details["session_id"] = principal_session_id
        identity.ctx.event(account_id, "account_cancelled", ip, user_agent, **details)
        if self._marketing_stopped is not None:
            self._marketing_stopped(account_id)
        period_ends = [s["current_period_end"] for s in subscriptions if s.get("current_period_end")]
        self.mailer.send(mails.account_cancelled(account.email, account.first_name, account.purge_at, period_ends))
        log.info(
            "account cancelled",
            account_id=account_id,
            by=details["by"],
            sessions_ended=ended,
            subscriptions=len(subscriptions),
            reason_given=bool(reason),
        )
        return self._answer(account)

    @staticmethod
    def _refuse_unless_active(account: Account) -> None:
        if account.status != ACTIVE:
            raise Conflict(
                "conflict",
                f"This account is {account.status}: only an active account can be cancelled.",
                account_status=account.status,
            )

    @staticmethod
    def _answer(account: Account) -> dict[str, Any]:
        return {"status": CANCELLED, "cancelled_at": _iso(account.cancelled_at), "purge_at": _iso(account.purge_at)}
