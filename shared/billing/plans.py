"""The plan catalogue: which Stripe price buys which plan, and what each plan entitles to (P9, P17).

One JSON document (`shared/billing/data/plans.json`, or `BILLING_PLANS_JSON` / `BILLING_PLANS_FILE`
in an environment whose Stripe account has other price ids). Checkout accepts only prices listed
here, and entitlements are only ever derived from it: Enterprise includes video and phone support
(P9), every plan includes 24x5 email support (P8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import ConfigError, Settings

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "plans.json"

EMAIL_SUPPORT = "email_support"
VIDEO_SUPPORT = "video_support"
PHONE_SUPPORT = "phone_support"
KNOWN_ENTITLEMENTS = frozenset({EMAIL_SUPPORT, VIDEO_SUPPORT, PHONE_SUPPORT})


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    rank: int
    entitlements: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "entitlements": list(self.entitlements)}


@dataclass(frozen=True)
class Catalogue:
    plans: dict[str, Plan]
    prices: dict[str, str]
    default_plan: str

    @property
    def default(self) -> Plan:
        return self.plans[self.default_plan]

    def plan(self, plan_id: str | None) -> Plan | None:
        return self.plans.get(plan_id or "")

    def plan_for_price(self, price_id: str | None) -> Plan | None:
        plan_id = self.prices.get(price_id or "")
        return self.plans.get(plan_id) if plan_id else None

    def prices_of(self, plan_id: str) -> list[str]:
        return sorted(price for price, plan in self.prices.items() if plan == plan_id)

    @classmethod
    def parse(cls, doc: Any, source: str = "the plan catalogue") -> Catalogue:
        """Validate a catalogue document; any mistake is a ConfigError naming it."""
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("plans"), dict)
            or not isinstance(doc.get("prices"), dict)
        ):
            raise ConfigError(f"{source}: needs a 'plans' object and a 'prices' object")
        plans: dict[str, Plan] = {}
        for plan_id, spec in doc["plans"].items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{source}: plan {plan_id!r} must be an object")
            entitlements = spec.get("entitlements", [])
            if not isinstance(entitlements, list) or not all(isinstance(e, str) for e in entitlements):
                raise ConfigError(f"{source}: entitlements of {plan_id!r} must be a list of names")
            unknown = set(entitlements) - KNOWN_ENTITLEMENTS
            if unknown:
                raise ConfigError(f"{source}: unknown entitlements {sorted(unknown)} in plan {plan_id!r}")
            try:
                rank = int(spec.get("rank", 0))
            except (TypeError, ValueError):
                raise ConfigError(f"{source}: rank of {plan_id!r} must be an integer") from None
            plans[plan_id] = Plan(plan_id, str(spec.get("name") or plan_id), rank, tuple(entitlements))
        prices: dict[str, str] = {}
        for price_id, plan_id in doc["prices"].items():
            if plan_id not in plans:
                raise ConfigError(f"{source}: price {price_id!r} maps to unknown plan {plan_id!r}")
            prices[str(price_id)] = str(plan_id)
        default_plan = str(doc.get("default_plan", "free"))
        if default_plan not in plans:
            raise ConfigError(f"{source}: default_plan {default_plan!r} is not a plan")
        if default_plan in prices.values():
            raise ConfigError(f"{source}: the default plan {default_plan!r} cannot be bought")
        return cls(plans, prices, default_plan)

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalogue:
        if settings.billing_plans_json:
            source, text = "BILLING_PLANS_JSON", settings.billing_plans_json
        else:
            path = Path(settings.billing_plans_file) if settings.billing_plans_file else DEFAULT_FILE
            source = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the plan catalogue {path}: {exc}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        return cls.parse(doc, source)
