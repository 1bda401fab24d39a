"""The one table from domain errors to HTTP answers (RFC 9457 problem+json).

Services raise `shared.errors` classes; `HttpApp` turns each into a `Problem` here. A class is matched
by its nearest entry in the method resolution order, so a subclass (PasswordRefused) inherits its
parent's status (InvalidInput: 422) unless it has a row of its own.
"""

from __future__ import annotations

from shared import errors
from shared.http.problems import Problem

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 422,
    errors.InvalidToken: 400,
    errors.NotAuthenticated: 401,
    errors.InvalidCredentials: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.Throttled: 429,
    errors.Unavailable: 503,
    errors.DomainError: 400,
}


def status_of(kind: type[errors.DomainError]) -> int:
    for klass in kind.__mro__:
        if klass in STATUS:
            return STATUS[klass]  # type: ignore[index]
    return 400


def problem_for(error: errors.DomainError) -> Problem:
    """The problem+json answer for a domain error: status from the table, headers by kind."""
    headers: dict[str, str] = {}
    if isinstance(error, errors.Throttled | errors.Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="wizyvision"'
    return Problem(status_of(type(error)), error.code, error.heading, error.detail, headers=headers, **error.extensions)
