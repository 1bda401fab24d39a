"""The one HTTP client of the processor adapters, and the egress guard (P14).

Every call a processor adapter makes goes through a `guarded_session`: its transport refuses any
host that `shared.datamap.host_allowed` does not allow (plain HTTP too, outside local mode). In
local mode, and only there, loopback hosts are allowed as well: that is how tests point the
adapters at local fakes (`*_API_BASE`). The stripe library is given the same session, so Stripe
calls pass the same gate.

Answers are classified once, here, into a `StepOutcome` (see `shared.processors`):
404 -> "not_found" (success); 429 -> "retry" with `Retry-After`; 5xx, timeouts and connection
errors -> "retry"; any other 4xx -> "failed". No call is ever retried here and nothing sleeps:
the privacy worker decides when to try again. Details never carry the request's personal data.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from shared import datamap
from shared.observability import get_logger
from shared.processors import ProcessorError, StepOutcome

log = get_logger(__name__)

USER_AGENT = "wizyvision-privacy-backend"
_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


class EgressRefused(RuntimeError):
    """A call to a host that is not a declared processor's (P14)."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def egress_allowed(url: str, *, local: bool) -> bool:
    """True when `url` may be called: a processor's host over HTTPS, or loopback in local mode."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if local and is_loopback(host):
        return parts.scheme in ("http", "https")
    return parts.scheme == "https" and datamap.host_allowed(host)


class _GuardedAdapter(HTTPAdapter):
    """The transport of every processor call: refuses undeclared hosts before any connection."""

    def __init__(self, *, local: bool) -> None:
        self.local = local
        super().__init__(max_retries=0)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if not egress_allowed(url, local=self.local):
            host = urlsplit(url).hostname or "?"
            log.alert("egress refused: host not in the data map", host=host, method=request.method)
            raise EgressRefused(f"{host} is not a processor host declared in shared/datamap.py (P14)")
        return super().send(request, *args, **kwargs)


def guarded_session(*, local: bool) -> requests.Session:
    """A requests session whose every call passes the egress guard (redirects included)."""
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment: the host we check is the host we call
    session.headers["User-Agent"] = USER_AGENT
    adapter = _GuardedAdapter(local=local)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_code(body: Any) -> str:
    """A processor's machine-readable error code, if it gave one (never free text: it may echo the email)."""
    candidates: list[Any] = []
    if isinstance(body, Mapping):
        candidates += [body.get("error"), body.get("category"), body.get("code"), body.get("type")]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            candidates.append(errors[0].get("code"))
        if isinstance(body.get("error"), Mapping):
            candidates += [body["error"].get("code"), body["error"].get("type")]
    for value in candidates:
        if isinstance(value, str) and _CODE.fullmatch(value):
            return value
    return ""


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def classify(status: int, what: str, *, body: Any = None, retry_after: str | None = None) -> StepOutcome:
    """The outcome of a non-2xx answer (see the module docstring)."""
    code = _error_code(body)
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "")
    if status == 404:
        return StepOutcome("not_found", detail)
    if status == 429:
        return StepOutcome("retry", detail, retry_after=retry_after_seconds(retry_after))
    if status >= 500 or status in (408, 409, 423):
        return StepOutcome("retry", detail)
    return StepOutcome("failed", detail)


def outcome_of(result: HttpResult, what: str) -> StepOutcome:
    if result.ok:
        return StepOutcome("done", what)
    return classify(result.status, what, body=result.body, retry_after=result.headers.get("Retry-After"))


class ProcessorHttp:
    """JSON over HTTPS to one processor's API, through the guarded session."""

    def __init__(
        self,
        processor: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        local: bool,
        auth: tuple[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.processor = processor
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.auth = auth
        self.session = session or guarded_session(local=local)

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> HttpResult:
        """One call. Transport failures raise `ProcessorError` ("retry"; "failed" for a refused host)."""
        url = self.base_url + path
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                json=json,
                headers=self.headers,
                auth=self.auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except EgressRefused as exc:
            raise ProcessorError(StepOutcome("failed", f"{what}: egress refused (P14)")) from exc
        except requests.Timeout as exc:
            log.warning("processor timeout", processor=self.processor, call=what)
            raise ProcessorError(StepOutcome("retry", f"{what}: timeout")) from exc
        except requests.RequestException as exc:
            log.warning("processor unreachable", processor=self.processor, call=what, error=type(exc).__name__)
            raise ProcessorError(StepOutcome("retry", f"{what}: connection error")) from exc
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        log.info("processor call", processor=self.processor, call=what, status=resp.status_code)
        return HttpResult(resp.status_code, body, resp.headers)

    def expect(self, method: str, path: str, what: str, **kwargs: Any) -> HttpResult:
        """A call that must succeed (2xx, or 404 which the caller reads as "nothing there")."""
        result = self.call(method, path, what, **kwargs)
        if result.ok or result.status == 404:
            return result
        raise ProcessorError(outcome_of(result, what))


def segment(value: object) -> str:
    """One path segment, escaped (ids come from processors' answers: never trust them in a path)."""
    return quote(str(value), safe="")
