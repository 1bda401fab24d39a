"""Intercom as a processor: the contact (P11, P24, P26).

The contact is found with `POST /contacts/search` (email, or external id = the account id), then
erased with `DELETE /contacts/{id}`, which deletes it permanently (archiving, the reversible
one, is never used). Export is each matching contact, allow-listed.

Marketing consent (P18): `sync_consent` sets `unsubscribed_from_emails` (the opposite of consent)
on every matching contact with `PUT /contacts/{id}`; no contact is "not_found" (nothing to change).

Authentication: `INTERCOM_TOKEN` (bearer); base `INTERCOM_API_BASE` (the EU region,
https://api.eu.intercom.io, by default: the workspace's region decides).
"""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.processors import StepOutcome, Subject
from shared.processors.base import not_configured, pick, run_erase, run_sync
from shared.processors.http import ProcessorHttp, outcome_of, segment

NAME = "Intercom"
API_VERSION = "2.11"
PER_PAGE = 50

CONTACT = (
    "id",
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "created_at",
    "updated_at",
    "signed_up_at",
    "last_seen_at",
    "last_replied_at",
    "last_contacted_at",
    "last_email_opened_at",
    "browser",
    "os",
    "language_override",
    "unsubscribed_from_emails",
    "custom_attributes",
)
LOCATION = ("country", "region", "city")


def search_query(subject: Subject) -> dict[str, Any]:
    clauses = [{"field": "external_id", "operator": "=", "value": subject.account_id}]
    if subject.email:
        clauses.append({"field": "email", "operator": "=", "value": subject.email})
    return {"query": {"operator": "OR", "value": clauses}, "pagination": {"per_page": PER_PAGE}}


class IntercomAdapter:
    name = NAME

    def __init__(self, settings: Settings, http: ProcessorHttp | None = None) -> None:
        self.settings = settings
        self._http = http

    @property
    def http(self) -> ProcessorHttp:
        if self._http is None:
            s = self.settings
            if not s.intercom_token:
                raise not_configured(NAME, "INTERCOM_TOKEN")
            self._http = ProcessorHttp(
                NAME,
                s.intercom_api_base,
                headers={
                    "Authorization": f"Bearer {s.intercom_token}",
                    "Accept": "application/json",
                    "Intercom-Version": API_VERSION,
                },
                timeout=s.processor_timeout_seconds,
                local=s.is_local,
            )
        return self._http

    def _contacts(self, subject: Subject) -> list[dict[str, Any]]:
        body = search_query(subject)
        found: dict[str, dict[str, Any]] = {}
        while True:
            result = self.http.expect("POST", "/contacts/search", "contacts.search", json=body)
            page = result.body if result.ok and isinstance(result.body, dict) else {}
            for contact in page.get("data") or []:
                if isinstance(contact, dict) and contact.get("id"):
                    found.setdefault(str(contact["id"]), contact)
            after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
            if not after:
                return list(found.values())
            body = {**body, "pagination": {"per_page": PER_PAGE, "starting_after": after}}

    def export(self, subject: Subject) -> dict[str, Any]:
        contacts = []
        for contact in self._contacts(subject):
            fields = pick(contact, CONTACT)
            if isinstance(contact.get("location"), dict):
                fields["location"] = pick(contact["location"], LOCATION)
            contacts.append(fields)
        return {"found": bool(contacts), "contacts": contacts}

    def erase(self, subject: Subject) -> StepOutcome:
        return run_erase(self.name, lambda: self._erase(subject))

    def _erase(self, subject: Subject) -> StepOutcome:
        deleted = 0
        for contact in self._contacts(subject):
            result = self.http.call("DELETE", f"/contacts/{segment(contact['id'])}", "contacts.delete")
            outcome = outcome_of(result, "contacts.delete")
            if not outcome.succeeded:
                return outcome
            deleted += result.ok
        if not deleted:
            return StepOutcome("not_found", "no Intercom contact")
        return StepOutcome("done", f"{deleted} Intercom contact(s) deleted")

    def sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome:
        return run_sync(self.name, lambda: self._sync_consent(subject, marketing))

    def _sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome:
        updated = 0
        for contact in self._contacts(subject):
            result = self.http.call(
                "PUT",
                f"/contacts/{segment(contact['id'])}",
                "contacts.update",
                json={"unsubscribed_from_emails": not marketing},
            )
            outcome = outcome_of(result, "contacts.update")
            if not outcome.succeeded:
                return outcome
            updated += result.ok
        if not updated:
            return StepOutcome("not_found", "no Intercom contact")
        return StepOutcome("done", f"{updated} Intercom contact(s) {'subscribed' if marketing else 'unsubscribed'}")
