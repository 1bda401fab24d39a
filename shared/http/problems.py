"""RFC 9457 problem details: every error this backend answers is `application/problem+json`.

`type` is a stable URI per kind of problem, so clients branch on it, never on the English title.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://wizyvision.com/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere below an entry point; the HTTP app turns it into a problem+json answer."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail or title}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc


def bad_request(slug: str, detail: str, **ext: Any) -> Problem:
    return Problem(400, slug, "Bad request", detail, **ext)


def unauthorized(detail: str = "A valid session token is required.", slug: str = "unauthenticated") -> Problem:
    return Problem(
        401,
        slug,
        "Unauthenticated",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="wizyvision"'},
    )


def forbidden(slug: str, detail: str) -> Problem:
    return Problem(403, slug, "Forbidden", detail)


def not_found(detail: str = "No such resource.") -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def conflict(slug: str, detail: str) -> Problem:
    return Problem(409, slug, "Conflict", detail)


def unavailable(slug: str, detail: str, retry_after: int = 30) -> Problem:
    return Problem(
        503,
        slug,
        "Service unavailable",
        detail,
        headers={"Retry-After": str(retry_after)},
    )
