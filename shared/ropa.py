"""The record of processing activities (GDPR Art. 30(1)), generated from the data map (P24, P26, P29).

Everything in it comes from `shared/datamap.py` (places, purposes, categories, retention, erasure,
processors) plus the controller and DPO of the policy: the record cannot drift from what the code
does. `record_of_processing()` is the structured document (JSON-able; the admin API serves it at
`GET /admin/privacy/records`), `render_markdown()` its text form (`python -m shared.cli records`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared import datamap

if TYPE_CHECKING:
    from shared.config import Settings

CONTROLLER = {
    "name": "WizyVision SAS",
    "address": "16-18 rue de Londres, 75009 Paris, France",
}
DPO_NAME = "Laurent Gasser"
DEFAULT_DPO_EMAIL = "dpo@wizyvision.com"

# What each data category of the map is, in words (Art. 30(1)(c)). A category without a line here
# is printed with "(no description)": add one when you add a category.
CATEGORIES: dict[str, str] = {
    "profile": "Identity and contact data: first and last name, login email, billing contact, Google subject",
    "sessions": "Connection data: IP address, user agent, sign-in method, session times",
    "security": "Security tokens and counters: digests of links and of addresses, failure times",
    "security_events": "Security events: sign-ins, failures, lockouts, with IP address and user agent",
    "privacy_requests": "Data subject requests and the outcome of each of their steps",
    "deletion_records": "Proof of erasure: opaque ids, timestamps and outcomes (no personal data)",
    "audit": "Accountability records of staff access: opaque ids, actions, reasons",
    "business_files": "The customer's business files (confidential, P20)",
    "exports": "Archives of the customer's own data, made at their request",
    "billing": "Billing data: Stripe ids, plan, subscription status, invoices, billing contact (no card data)",
    "support": "Support requests: tickets, messages and their timing",
    "marketing": "Marketing preferences: consent history, newsletter subscription",
    "consents": "Consent history: what was agreed or withdrawn, and when",
    "telemetry": "Feature-usage events, aggregated; no IP address, user id or email (P23)",
    "product_telemetry": "Raw feature-usage events of an account: opaque account id, plan, country and browser "
    "families; no IP address, user agent or email (P12)",
    "analytics": "Aggregate counters, visitor sketches and daily salts of telemetry and web analytics: no IP "
    "address, user agent, user id or email (P23)",
    "system": "Operational records holding no personal data: digests of work keys, states, timestamps",
}

DATA_SUBJECTS = (
    "Customers: account holders and the users of their accounts",
    "WizyVision staff, as actors in the audit log of access to customer data (P10)",
)

SECURITY_MEASURES = (
    "All traffic over HTTPS with HSTS; plain HTTP refused (P5)",
    "Passwords hashed with bcrypt (cost 12) over a peppered HMAC pre-hash; no password or token in clear (P1)",
    "Session and link tokens stored only as SHA-256 digests; optional TOTP second factor (P21, P25)",
    "Sign-in throttling and lockout, security events per account, new-device notices (P22)",
    "Tenant isolation on every read and write (P20)",
    "Staff access only under live, scoped, time-boxed grants; hash-chained audit log (P10)",
    "Secrets in Google Secret Manager, readable only by the functions that use them",
    "Personal data leaves only to the processors of this record, through one egress-checked client (P14)",
    "Data stored in the EU (Firestore eur3, Cloud Storage and functions in europe-west1)",
    "Structured logs, uptime checks and alerts; breach register with a 72-hour deadline (P6, P30)",
)


def _duration(value: timedelta) -> str:
    days = value.days
    if value < timedelta(days=1):
        hours = int(value.total_seconds() // 3600)
        return f"{hours} hour{'s' * (hours != 1)}"
    if days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' * (years != 1)}"
    return f"{days} days"


def retention_text(retention: timedelta | None, erasure: str) -> str:
    if retention is not None:
        return _duration(retention)
    if erasure == "keep":
        return "kept: holds no personal data"
    return "while the account is active, then 12 months after its last use (P27)"


def erasure_text(erasure: str, reason: str) -> str:
    how = {
        "delete": "deleted on erasure",
        "anonymise": "anonymised on erasure",
        "expire": "not tied to the account by a direct identifier; expires by TTL",
        "keep": "kept on erasure",
    }.get(erasure, erasure)
    return f"{how}. {reason}".strip() if reason and erasure != "delete" else how


def _firestore(place: datamap.FirestorePlace) -> dict[str, Any]:
    return {
        "store": "Firestore",
        "place": f"{place.collection} (collection group)" if place.group else place.collection,
        "category": place.category,
        "purpose": place.purpose,
        "exported": place.export,
        "erasure": erasure_text(place.erasure, place.reason),
        "retention": retention_text(place.retention, place.erasure),
        "note": place.reason if place.erasure == "delete" else "",
    }


def _storage(place: datamap.StoragePlace) -> dict[str, Any]:
    return {
        "store": "Cloud Storage",
        "place": f"${place.bucket_setting}/{place.prefix}",
        "category": place.category,
        "purpose": place.purpose,
        "exported": place.export,
        "erasure": erasure_text(place.erasure, place.reason),
        "retention": retention_text(place.retention, place.erasure),
        "note": place.reason if place.erasure == "delete" else "",
    }


def _queue(place: datamap.QueuePlace) -> dict[str, Any]:
    return {
        "store": "Pub/Sub",
        "place": f"topic {place.topic}",
        "category": place.category,
        "purpose": place.purpose,
        "exported": False,
        "erasure": f"expires (messages are not deleted one by one). {place.reason}",
        "retention": retention_text(place.retention, "expire"),
        "note": "",
    }


def _outside_eu(location: str) -> bool:
    return any(word in location for word in ("US", "United States"))


def record_of_processing(settings: Settings | None = None) -> dict[str, Any]:
    """The record as a JSON-able document."""
    dpo_email = settings.dpo_email if settings is not None else DEFAULT_DPO_EMAIL
    activities = [_firestore(p) for p in (*datamap.FIRESTORE, *datamap.SYSTEM)]
    activities += [_storage(p) for p in datamap.STORAGE]
    activities += [_queue(p) for p in datamap.QUEUES]
    processors = [
        {
            "name": p.name,
            "purpose": p.purpose,
            "categories": list(p.categories),
            "location": p.location,
            "safeguards": p.safeguards,
            "transfer_outside_eu": _outside_eu(p.location),
            "hosts": list(p.hosts),
            "export": p.export,
            "erasure": p.erasure,
            "retention": p.retention,
        }
        for p in datamap.PROCESSORS
    ]
    names = sorted({a["category"] for a in activities} | {c for p in datamap.PROCESSORS for c in p.categories})
    categories = []
    for name in names:
        held_by = [p for p in datamap.PROCESSORS if name in p.categories]
        places = [a for a in activities if a["category"] == name]
        retention = sorted({a["retention"] for a in places})
        if not places:  # held only by processors (Stripe, Zendesk, HubSpot): their own row says how long
            retention = [f"at {p.name}: see processors" for p in held_by]
        categories.append(
            {
                "category": name,
                "description": CATEGORIES.get(name, "(no description)"),
                "purposes": sorted({a["purpose"] for a in places} | {p.purpose for p in held_by if not places}),
                "places": [f"{a['store']}: {a['place']}" for a in places],
                "retention": retention,
                "processors": [p.name for p in held_by],
            }
        )
    return {
        "title": "Record of processing activities (GDPR Art. 30(1))",
        "controller": {**CONTROLLER, "dpo": {"name": DPO_NAME, "email": dpo_email}},
        "data_subjects": list(DATA_SUBJECTS),
        "categories": categories,
        "activities": activities,
        "processors": processors,
        "transfers": [
            {"processor": p["name"], "location": p["location"], "safeguards": p["safeguards"]}
            for p in processors
            if p["transfer_outside_eu"]
        ],
        "security_measures": list(SECURITY_MEASURES),
        "source": "shared/datamap.py",
    }


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """The record as Markdown (readable as plain text)."""
    c = doc["controller"]
    out = [
        f"# {doc['title']}",
        "",
        f"Controller: {c['name']}, {c['address']}.",
        f"Data protection officer: {c['dpo']['name']}, {c['dpo']['email']}.",
        f"Generated from {doc['source']}.",
        "",
        "## Data subjects",
        "",
        *[f"- {s}" for s in doc["data_subjects"]],
        "",
        "## Categories of personal data",
        "",
        *_table(
            ["category", "what", "purposes", "retention", "processors"],
            [
                [k["category"], k["description"], k["purposes"], k["retention"], k["processors"]]
                for k in doc["categories"]
            ],
        ),
        "",
        "## Processing activities (where the data is, why, for how long)",
        "",
        *_table(
            ["store", "place", "category", "purpose", "exported", "erasure", "retention"],
            [
                [a["store"], a["place"], a["category"], a["purpose"], a["exported"], a["erasure"], a["retention"]]
                for a in doc["activities"]
            ],
        ),
        "",
        "## Processors (recipients)",
        "",
        *_table(
            ["processor", "purpose", "categories", "location", "safeguards", "erasure", "retention"],
            [
                [p["name"], p["purpose"], p["categories"], p["location"], p["safeguards"], p["erasure"], p["retention"]]
                for p in doc["processors"]
            ],
        ),
        "",
        "## Transfers outside the EU",
        "",
    ]
    if doc["transfers"]:
        out += [f"- {t['processor']} ({t['location']}): {t['safeguards']}" for t in doc["transfers"]]
    else:
        out.append("None.")
    out += ["", "## Security measures (Art. 32)", "", *[f"- {m}" for m in doc["security_measures"]], ""]
    return "\n".join(out)
