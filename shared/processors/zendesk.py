"""Zendesk as a processor: the support user and their tickets (P7, P11, P24, P26).

The user is found by external id (the account id, which single sign-on sets) and by email
(`GET /api/v2/users/search.json`). Erasure is Zendesk's two steps, both required: the soft delete
`DELETE /api/v2/users/{id}`, then the permanent `DELETE /api/v2/deleted_users/{id}`. A soft delete
alone is not an erasure: every erasure also scans the soft-deleted users
(`GET /api/v2/deleted_users.json`) for the address, so one left soft-deleted by an interrupted run,
or by an agent, is permanently deleted on the next attempt. Export is the user (allow-listed
fields) and the tickets they requested, with their comments.

Authentication: API token (`ZENDESK_EMAIL` + `/token` : `ZENDESK_API_TOKEN`), base
`https://{ZENDESK_SUBDOMAIN}.zendesk.com` (or `ZENDESK_API_BASE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.config import Settings
from shared.processors import ProcessorError, StepOutcome, Subject
from shared.processors.base import not_configured, pick, run_erase
from shared.processors.http import ProcessorHttp, outcome_of, segment

NAME = "Zendesk"
PAGE_SIZE = 100
MAX_PAGES = 200  # deleted users are purged by Zendesk after 30 days: 20,000 is far beyond any month

USER = (
    "id",
    "name",
    "email",
    "phone",
    "external_id",
    "role",
    "locale",
    "time_zone",
    "organization_id",
    "tags",
    "details",
    "notes",
    "user_fields",
    "created_at",
    "updated_at",
    "last_login_at",
    "verified",
    "active",
    "suspended",
)
TICKET = ("id", "subject", "description", "status", "type", "priority", "tags", "created_at", "updated_at")
COMMENT = ("id", "author_id", "public", "plain_body", "created_at")


class ZendeskAdapter:
    name = NAME

    def __init__(self, settings: Settings, http: ProcessorHttp | None = None) -> None:
        self.settings = settings
        self._http = http

    @property
    def http(self) -> ProcessorHttp:
        if self._http is None:
            s = self.settings
            for value, variable in (
                (s.zendesk_api_base, "ZENDESK_SUBDOMAIN"),
                (s.zendesk_email, "ZENDESK_EMAIL"),
                (s.zendesk_api_token, "ZENDESK_API_TOKEN"),
            ):
                if not value:
                    raise not_configured(NAME, variable)
            self._http = ProcessorHttp(
                NAME,
                s.zendesk_api_base,
                headers={"Accept": "application/json"},
                auth=(f"{s.zendesk_email}/token", s.zendesk_api_token),
                timeout=s.processor_timeout_seconds,
                local=s.is_local,
            )
        return self._http

    # --- finding the person ------------------------------------------------------------------

    def _search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        result = self.http.expect("GET", "/api/v2/users/search.json", "users.search", params=params)
        users = (result.body or {}).get("users") if result.ok else None
        return [u for u in users or [] if isinstance(u, dict) and u.get("id") is not None]

    def _active_users(self, subject: Subject) -> list[dict[str, Any]]:
        found: dict[Any, dict[str, Any]] = {}
        for user in self._search({"external_id": subject.account_id}):
            found[user["id"]] = user
        if subject.email:
            for user in self._search({"query": f"email:{subject.email}"}):
                email = str(user.get("email") or "").lower()
                if email == subject.email.lower() or user.get("external_id") == subject.account_id:
                    found.setdefault(user["id"], user)
        return list(found.values())

    def _soft_deleted(self, subject: Subject) -> list[Any]:
        """Ids of soft-deleted users with the subject's address (still holding their data)."""
        ids: list[Any] = []
        params: dict[str, Any] = {"page[size]": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            result = self.http.expect("GET", "/api/v2/deleted_users.json", "deleted_users.list", params=params)
            body = result.body if result.ok and isinstance(result.body, dict) else {}
            for user in body.get("deleted_users") or []:
                if not isinstance(user, dict) or user.get("id") is None:
                    continue
                email = str(user.get("email") or "").lower()
                if (subject.email and email == subject.email.lower()) or user.get("external_id") == subject.account_id:
                    ids.append(user["id"])
            meta = body.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                return ids
            params = {"page[size]": PAGE_SIZE, "page[after]": meta["after_cursor"]}
        raise ProcessorError(StepOutcome("failed", "deleted_users.list: more pages than expected"))

    # --- export ------------------------------------------------------------------------------

    def _pages(self, path: str, what: str, key: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"page[size]": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            result = self.http.expect("GET", path, what, params=params)
            body = result.body if result.ok and isinstance(result.body, dict) else {}
            yield from (item for item in body.get(key) or [] if isinstance(item, dict))
            meta = body.get("meta") or {}
            if not meta.get("has_more") or not meta.get("after_cursor"):
                return
            params = {"page[size]": PAGE_SIZE, "page[after]": meta["after_cursor"]}

    def export(self, subject: Subject) -> dict[str, Any]:
        users = []
        for user in self._active_users(subject):
            uid = segment(user["id"])
            tickets = []
            for ticket in self._pages(f"/api/v2/users/{uid}/tickets/requested.json", "tickets.requested", "tickets"):
                comments = self._pages(
                    f"/api/v2/tickets/{segment(ticket.get('id'))}/comments.json", "tickets.comments", "comments"
                )
                tickets.append({**pick(ticket, TICKET), "comments": [pick(c, COMMENT) for c in comments]})
            users.append({"user": pick(user, USER), "tickets": tickets})
        return {"found": bool(users), "users": users}

    # --- erasure -----------------------------------------------------------------------------

    def erase(self, subject: Subject) -> StepOutcome:
        return run_erase(self.name, lambda: self._erase(subject))

    def _erase(self, subject: Subject) -> StepOutcome:
        pending: list[Any] = []
        for user in self._active_users(subject):
            result = self.http.call("DELETE", f"/api/v2/users/{segment(user['id'])}", "users.delete")
            outcome = outcome_of(result, "users.delete")
            if not outcome.succeeded:
                return outcome
            if result.ok:
                pending.append(user["id"])
        for user_id in self._soft_deleted(subject):
            if user_id not in pending:
                pending.append(user_id)
        purged = 0
        for user_id in pending:
            result = self.http.call("DELETE", f"/api/v2/deleted_users/{segment(user_id)}", "deleted_users.delete")
            outcome = outcome_of(result, "deleted_users.delete")
            if not outcome.succeeded:
                return outcome
            purged += result.ok
        if not purged:
            return StepOutcome("not_found", "no Zendesk user")
        return StepOutcome("done", f"{purged} Zendesk user(s) permanently deleted")
