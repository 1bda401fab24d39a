"""HubSpot as a processor: the marketing contact (P11, P18, P24, P26).

Export is `GET /crm/v3/objects/contacts/{email}?idProperty=email` with an allow-list of
properties; erasure is HubSpot's GDPR delete, `POST /crm/v3/objects/contacts/gdpr-delete` by
email, which removes the contact permanently and blocks the address from being re-created by
tracking. A contact HubSpot does not know answers 404: not found, which is success.

Marketing consent (P18): `sync_consent` subscribes the address to, or unsubscribes it from, the
marketing subscription type `HUBSPOT_SUBSCRIPTION_ID` with the communication preferences API
(`POST /communication-preferences/v3/subscribe` with legal basis "consent with notice", or
`POST /communication-preferences/v3/unsubscribe`). HubSpot refuses a subscription the address
already has (or lacks) with a 400 saying so: that is the wanted state, so it counts as done.

Authentication: `HUBSPOT_TOKEN` (a private app token, bearer; scopes crm.objects.contacts and
communication_preferences); base `HUBSPOT_API_BASE`.
"""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.processors import StepOutcome, Subject
from shared.processors.base import not_configured, run_erase, run_sync
from shared.processors.http import ProcessorHttp, outcome_of, segment

NAME = "HubSpot"
PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "jobtitle",
    "country",
    "city",
    "lifecyclestage",
    "hs_language",
    "hs_email_optout",
    "createdate",
    "lastmodifieddate",
)


class HubSpotAdapter:
    name = NAME

    def __init__(self, settings: Settings, http: ProcessorHttp | None = None) -> None:
        self.settings = settings
        self._http = http

    @property
    def http(self) -> ProcessorHttp:
        if self._http is None:
            s = self.settings
            if not s.hubspot_token:
                raise not_configured(NAME, "HUBSPOT_TOKEN")
            self._http = ProcessorHttp(
                NAME,
                s.hubspot_api_base,
                headers={"Authorization": f"Bearer {s.hubspot_token}", "Accept": "application/json"},
                timeout=s.processor_timeout_seconds,
                local=s.is_local,
            )
        return self._http

    def export(self, subject: Subject) -> dict[str, Any]:
        if not subject.email:
            return {"found": False}
        result = self.http.expect(
            "GET",
            f"/crm/v3/objects/contacts/{segment(subject.email)}",
            "contacts.read",
            params={"idProperty": "email", "properties": ",".join(PROPERTIES), "archived": "false"},
        )
        if not result.ok or not isinstance(result.body, dict):
            return {"found": False}
        body = result.body
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        return {
            "found": True,
            "contact": {
                "id": body.get("id"),
                "created_at": body.get("createdAt"),
                "updated_at": body.get("updatedAt"),
                "properties": {name: props[name] for name in PROPERTIES if name in props},
            },
        }

    def erase(self, subject: Subject) -> StepOutcome:
        return run_erase(self.name, lambda: self._erase(subject))

    def _erase(self, subject: Subject) -> StepOutcome:
        if not subject.email:
            return StepOutcome("not_found", "no email to erase by")
        result = self.http.call(
            "POST",
            "/crm/v3/objects/contacts/gdpr-delete",
            "contacts.gdpr_delete",
            json={"objectId": subject.email, "idProperty": "email"},
        )
        outcome = outcome_of(result, "contacts.gdpr_delete")
        if outcome.status == "done":
            return StepOutcome("done", "HubSpot contact permanently deleted (GDPR delete)")
        if outcome.status == "not_found":
            return StepOutcome("not_found", "no HubSpot contact")
        return outcome

    def sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome:
        return run_sync(self.name, lambda: self._sync_consent(subject, marketing))

    def _sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome:
        subscription = self.settings.hubspot_subscription_id
        http = self.http  # "not configured" without a token
        if not subscription:
            raise not_configured(NAME, "HUBSPOT_SUBSCRIPTION_ID")
        if not subject.email:
            return StepOutcome("not_found", "no email to sync by")
        if marketing:
            path, what = "/communication-preferences/v3/subscribe", "communication_preferences.subscribe"
            body = {
                "emailAddress": subject.email,
                "subscriptionId": subscription,
                "legalBasis": "CONSENT_WITH_NOTICE",
                "legalBasisExplanation": "The account holder opted in to marketing mail in WizyVision.",
            }
        else:
            path, what = "/communication-preferences/v3/unsubscribe", "communication_preferences.unsubscribe"
            body = {"emailAddress": subject.email, "subscriptionId": subscription}
        result = http.call("POST", path, what, json=body)
        if result.status == 400 and _already(result.body):
            return StepOutcome("done", f"{what}: already in that state")
        outcome = outcome_of(result, what)
        if outcome.status == "done":
            return StepOutcome("done", f"HubSpot marketing subscription {'on' if marketing else 'off'}")
        return outcome


def _already(body: Any) -> bool:
    """HubSpot's 400 for a subscription already in the asked state ("... is already subscribed ...")."""
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and "already" in message.lower()
