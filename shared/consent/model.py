"""Marketing consent: the current answer of an account and each change of it (the proof of consent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

CONSENTS = "marketing_consents"  # one document per account (id = account id): the current answer
CONSENT_HISTORY = "marketing_consent_history"  # one document per change, never updated
SYNC_TOPIC = "consent-sync"  # a change queued for the processors that send marketing

Source = Literal["signup", "settings", "unsubscribe-link", "support", "dpo"]
SOURCES: tuple[str, ...] = get_args(Source)
MARKETING = "marketing"  # Mail.category of a marketing mail


@dataclass(frozen=True)
class Consent:
    """The current answer. No record means no consent (the default, P18)."""

    account_id: str
    marketing: bool = False
    changed_at: datetime | None = None
    source: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "marketing": self.marketing,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "source": self.source,
        }

    def to_doc(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "marketing": self.marketing,
            "changed_at": self.changed_at,
            "source": self.source,
        }

    @classmethod
    def from_doc(cls, account_id: str, data: dict[str, Any]) -> Consent:
        return cls(
            account_id=account_id,
            marketing=bool(data.get("marketing", False)),
            changed_at=data.get("changed_at"),
            source=data.get("source"),
        )


@dataclass(frozen=True)
class ConsentChange:
    """One change, kept as the proof of consent: when, what, how (source) and who (actor)."""

    account_id: str
    marketing: bool
    at: datetime
    source: str
    actor: str | None = None  # the account that made it: the holder, or staff (support, dpo); None for a link

    @property
    def by(self) -> str:
        """Who made the change, without naming staff: holder, staff, link, or system."""
        if self.actor is None:
            return "link" if self.source == "unsubscribe-link" else "system"
        return "holder" if self.actor == self.account_id else "staff"

    def to_doc(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "marketing": self.marketing,
            "at": self.at,
            "source": self.source,
            "actor": self.actor,
            "by": self.by,
        }

    def view(self) -> dict[str, Any]:
        return {"marketing": self.marketing, "at": self.at.isoformat(), "source": self.source, "by": self.by}

    @classmethod
    def from_doc(cls, data: dict[str, Any]) -> ConsentChange:
        return cls(
            account_id=str(data["account_id"]),
            marketing=bool(data.get("marketing", False)),
            at=data["at"],
            source=str(data.get("source") or ""),
            actor=data.get("actor"),
        )
