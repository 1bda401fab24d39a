"""Domain errors: what a use case refuses, in the policy's words, with no HTTP in sight.

Services and adapters raise these; the HTTP edge (`shared/http/errors.py`) maps each class to a
status and a problem+json body in one table, so no service imports flask or picks a status code.

Every error has a stable `slug` (the last part of its problem `type` URI): clients branch on it.
A class gives the default slug and title; a raise may name a more precise slug (`Conflict("email-taken",
...)`). Extra keyword arguments become problem extensions (never put a secret in one).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every refusal a use case can answer with."""

    slug: ClassVar[str] = "domain-error"
    title: ClassVar[str] = "Request refused"

    def __init__(
        self, detail: str | None = None, *, slug: str | None = None, title: str | None = None, **extensions: Any
    ) -> None:
        self.detail = detail
        self.code = slug or type(self).slug
        self.heading = title or type(self).title
        self.extensions = extensions
        super().__init__(f"{self.code}: {detail or self.heading}")


class _Slugged(DomainError):
    """An error raised as `Kind("specific-slug", "detail")`: the slug comes first."""

    def __init__(self, slug: str | None = None, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, slug=slug, **extensions)


class InvalidInput(_Slugged):
    """The request is well-formed but a value breaks a rule (422)."""

    slug = "validation-error"
    title = "Invalid request body"


class PasswordRefused(InvalidInput):
    """A new password breaks the password rules (12 to 128 characters, not common, not the email)."""

    slug = "weak-password"
    title = "Password refused"


class InvalidToken(_Slugged):
    """A single-use link or code is unknown, used, expired, or for another purpose (400)."""

    slug = "invalid-token"
    title = "Invalid link"


class NotAuthenticated(_Slugged):
    """No valid session (401)."""

    slug = "unauthenticated"
    title = "Unauthenticated"


class InvalidCredentials(_Slugged):
    """A sign-in that failed: wrong address, password or second factor (401)."""

    slug = "invalid-credentials"
    title = "Sign-in failed"


class Forbidden(_Slugged):
    """The caller is known but may not do this (403)."""

    slug = "forbidden"
    title = "Forbidden"


class ReauthenticationRequired(Forbidden):
    """A sensitive action needs the current password, a recent Google sign-in or a second factor (403)."""

    slug = "reauthentication-required"
    title = "Re-authentication required"


class NotFound(_Slugged):
    slug = "not-found"
    title = "Not found"


class Conflict(_Slugged):
    """The resource's state does not allow this now (409)."""

    slug = "conflict"
    title = "Conflict"


class Gone(_Slugged):
    """The thing existed and is no more (410)."""

    slug = "gone"
    title = "Gone"


class Throttled(DomainError):
    """Too many attempts: try again after `retry_after` seconds (429)."""

    slug = "too-many-attempts"
    title = "Too many attempts"

    def __init__(
        self, retry_after: int, detail: str | None = None, *, slug: str | None = None, **extensions: Any
    ) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail or "Too many attempts; wait before trying again.", slug=slug, **extensions)
        self.extensions.setdefault("retry_after", self.retry_after)


class Unavailable(DomainError):
    """A dependency is down or the attempt could not be recorded: try again later (503)."""

    slug = "unavailable"
    title = "Service unavailable"

    def __init__(
        self, detail: str | None = None, *, retry_after: int = 30, slug: str | None = None, **extensions: Any
    ) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail, slug=slug, **extensions)
