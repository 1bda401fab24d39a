"""A small resolver for Cloud Functions HTTP entry points, in the manner of AWS Lambda Powertools.

An entry point stays one line (`return app.resolve(request)`); routes live on `Router`s; request
bodies are parsed into pydantic models; every error is problem+json; security headers, HTTPS
enforcement (P5), CORS, trace-bound logging and the session authenticator are applied here once,
for every function.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import flask
from pydantic import BaseModel, ValidationError

from shared.config import Settings
from shared.errors import DomainError
from shared.http.errors import problem_for
from shared.http.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, Problem, problem_base, unauthorized
from shared.observability import get_logger, log_context, parse_trace_header

log = get_logger(__name__)

# JSON bodies nest at most this deep (objects and arrays): deeper is a 400, never a RecursionError (500).
MAX_JSON_DEPTH = 64

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}


@dataclass
class Request:
    """What a route handler sees: the flask request plus what the app derived from it."""

    raw: flask.Request
    path_params: dict[str, str]
    principal: Any = None
    bearer_token: str | None = None
    ip_source: str = "first-hop"
    params: BaseModel | None = None  # the query parameters, validated, on routes declared with `query=`

    @property
    def client_ip(self) -> str:
        """The client's address from X-Forwarded-For, as trusted per `CLIENT_IP_SOURCE`, else the peer."""
        return client_ip(self.raw, self.ip_source)

    @property
    def user_agent(self) -> str:
        return self.raw.headers.get("User-Agent", "")[:512]

    @property
    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.raw.args.items()}


@dataclass
class Response:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


Handler = Callable[..., Any]
Authenticator = Callable[[Request, str], Any]
# Called for every call of an authenticated route once its principal is known: before the handler runs
# (problem None, body parsed), or when the call is refused (role missing, invalid body). An admin function
# writes each call to the audit log this way, refused ones included (P10). It may raise a Problem.
AuditHook = Callable[["Request", "Route", "BaseModel | None", "Problem | None"], None]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    body: type[BaseModel] | None
    status: int
    auth: bool
    roles: frozenset[str] = frozenset()
    raw_body: bool = False
    optional_auth: bool = False  # auth="optional": a bearer token is authenticated when sent
    max_body_bytes: int | None = None  # this route's body limit (MAX_BODY_BYTES when None)
    # Description only (the OpenAPI document, shared/http/openapi.py), except `query`, which is validated.
    query: type[BaseModel] | None = None  # query parameters, validated into `req.params` (422 otherwise)
    response: type[BaseModel] | None = None  # the success answer's body
    summary: str | None = None  # defaults to the first line of the handler's docstring
    description: str | None = None  # defaults to the rest of the docstring
    problems: tuple[int, ...] = ()  # further statuses the route may answer with a problem (409, 429, 503...)
    produces: str = "application/json"  # the success answer's media type ("text/html" for pages)


class Router:
    """A set of routes; a function's app includes one or more routers."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        template: str,
        *,
        body: type[BaseModel] | None = None,
        status: int = 200,
        auth: bool | Literal["optional"] = False,
        roles: tuple[str, ...] = (),
        raw_body: bool = False,
        max_body_bytes: int | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        summary: str | None = None,
        description: str | None = None,
        problems: tuple[int, ...] = (),
        produces: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        """Register a handler. `roles`: the caller needs any one of them (implies `auth`).

        `raw_body=True` passes the request body to the handler as bytes, exactly as received (up to
        MAX_BODY_BYTES), for handlers that verify a signature over it (webhooks).

        `auth="optional"`: a call without a bearer token is served anonymously (`req.principal` is None);
        one with a token is authenticated (an invalid token is a 401, never a silent downgrade).
        `max_body_bytes` raises or lowers MAX_BODY_BYTES for this route only.

        For the OpenAPI document (`GET /<function>/openapi.json`): `query` (a model of the query
        parameters, also validated: the handler finds it in `req.params`, a 422 otherwise), `response`
        (the success body's model), `summary` and `description` (by default the handler's docstring:
        first line, then the rest), `problems` (further statuses it may answer, e.g. `(409, 503)`) and
        `produces` (the success media type, `"text/html"` for a page a browser opens).
        """
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template.rstrip("/")) + "/?$"

        def register(handler: Handler) -> Handler:
            doc_summary, doc_description = _docstring(handler)
            self.routes.append(
                Route(
                    method,
                    template,
                    re.compile(regex),
                    handler,
                    body,
                    status,
                    auth is True or bool(roles),
                    frozenset(roles),
                    raw_body,
                    optional_auth=auth == "optional" and not roles,
                    max_body_bytes=max_body_bytes,
                    query=query,
                    response=response,
                    summary=summary or doc_summary,
                    description=description or doc_description,
                    problems=tuple(problems),
                    produces=produces,
                )
            )
            return handler

        return register

    def get(self, template: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", template, **kw)

    def post(self, template: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", template, **kw)

    def patch(self, template: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", template, **kw)

    def put(self, template: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", template, **kw)

    def delete(self, template: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", template, **kw)


def _docstring(handler: Handler) -> tuple[str | None, str | None]:
    """(summary, description) from a handler's docstring: its first paragraph, then the rest."""
    text = inspect.getdoc(handler) or ""
    if not text:
        return None, None
    paragraphs = text.split("\n\n", 1)
    summary = " ".join(paragraphs[0].split())
    rest = paragraphs[1].strip() if len(paragraphs) > 1 else ""
    return summary, rest or None


def validation_problem(
    exc: ValidationError, slug: str = "validation-error", title: str = "Invalid request body"
) -> Problem:
    """422 listing each invalid field; never echoes the input (it may be a password)."""
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": err["msg"],
            "code": err["type"],
        }
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    return Problem(422, slug, title, "One or more fields are invalid.", errors=errors)


class HttpApp:
    """Resolves a flask request to a route: the whole request lifecycle of one HTTP function."""

    def __init__(
        self,
        name: str,
        settings: Callable[[], Settings],
        routers: list[Router],
        authenticator: Callable[[], Authenticator] | None = None,
        audit: Callable[[], AuditHook] | None = None,
        public: bool = True,
    ) -> None:
        self.name = name
        # False: an internal function (Cloud Scheduler, OIDC only) that the load balancer never routes;
        # it serves its own /<name>/openapi.json but is not in the public API document (/openapi.json).
        self.public = public
        self._settings = settings
        self._authenticator = authenticator
        self._audit = audit
        # Built in, first so that no route of the function shadows it: the function's own contract.
        self.routes = [*_openapi_router(self).routes, *(r for router in routers for r in router.routes)]
        self._openapi: dict[str, Any] | None = None
        self._catch_unrouted_paths()

    def _catch_unrouted_paths(self) -> None:
        """Resolve what functions-framework's own router drops: its `/<path:path>` rule does not match a path
        holding a newline (`/privacy/requests/a%0Ab`), and Flask would answer that with an HTML 404. This app is
        created while functions-framework loads its function, so `errorhandler` is that function's Flask app's
        (a no-op outside functions-framework); only the first app made for a Flask app is registered."""
        try:
            import functions_framework

            register = functions_framework.errorhandler
            flask_app = getattr(register, "__self__", None)
            if not isinstance(flask_app, flask.Flask) or flask_app.error_handler_spec.get(None, {}).get(404):
                return
            register(404)(lambda _error: self.resolve(flask.request))
        except Exception:  # never stop a cold start for this
            log.warning("could not register the fallback for unrouted paths", exc_info=True)

    def openapi(self) -> dict[str, Any]:
        """This function's OpenAPI 3.1 document (built once, from the routes)."""
        if self._openapi is None:
            from shared.http.openapi import build_document

            self._openapi = build_document(self)
        return self._openapi

    # -- entry point -------------------------------------------------------------------------
    def resolve(self, raw: flask.Request) -> flask.Response:
        started = time.perf_counter()
        trace, span = parse_trace_header(raw.headers.get("X-Cloud-Trace-Context"), raw.headers.get("traceparent"))
        with log_context(trace, span, function=self.name):
            settings = self._settings()
            route_name = "-"
            try:
                self._require_https(raw, settings)
                if raw.method == "OPTIONS":
                    response = self._preflight(raw, settings)
                else:
                    route, params = self._match(raw)
                    route_name = route.template
                    response = self._render(self._call(route, params, raw), route.status)
            except Problem as problem:
                response = self._problem(problem, raw.path)
            except DomainError as error:  # a use case refused: one table gives its status
                response = self._problem(problem_for(error), raw.path)
            except Exception:  # a bug or an unavailable dependency: 500, logged with its stack trace
                log.error("unhandled error", exc_info=True, path=raw.path, method=raw.method)  # noqa: G201
                response = self._problem(
                    Problem(
                        500,
                        "internal",
                        "Internal error",
                        "The request could not be completed.",
                    ),
                    raw.path,
                )
            self._decorate(response, raw, settings)
            log.info(
                "request",
                method=raw.method,
                route=route_name,
                status=response.status_code,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return response

    # -- steps ---------------------------------------------------------------------------------
    def _require_https(self, raw: flask.Request, settings: Settings) -> None:
        if settings.is_local:
            return
        if raw.headers.get("X-Forwarded-Proto", "").lower() != "https":
            raise Problem(
                403,
                "https-required",
                "HTTPS required",
                "This API is served over HTTPS only (P5).",
            )

    def _match(self, raw: flask.Request) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(raw.path)
            if not found:
                continue
            if route.method == raw.method or (raw.method == "HEAD" and route.method == "GET"):
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise Problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                f"{raw.method} is not supported here.",
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise Problem(404, "not-found", "Not found", f"No route for {raw.path}.")

    def _call(self, route: Route, params: dict[str, str], raw: flask.Request) -> Any:
        request = Request(raw=raw, path_params=params, ip_source=self._settings().client_ip_source)
        if route.auth:
            token = _bearer(raw)
            if token is None or self._authenticator is None:
                raise unauthorized()
            request.bearer_token = token
            request.principal = self._authenticator()(request, token)
            if route.roles:
                held = set(getattr(getattr(request.principal, "account", None), "roles", None) or [])
                if not held & route.roles:
                    refused = Problem(
                        403,
                        "role-required",
                        "Forbidden",
                        f"This needs one of the roles: {', '.join(sorted(route.roles))}.",
                    )
                    self._audit_call(request, route, None, refused)
                    raise refused
        elif route.optional_auth and (token := _bearer(raw)) is not None:
            if self._authenticator is None:
                raise unauthorized()
            request.bearer_token = token
            request.principal = self._authenticator()(request, token)
        if route.query is not None:
            try:
                request.params = route.query.model_validate(dict(raw.args))
            except ValidationError as exc:
                refused = validation_problem(exc, "invalid-query", "Invalid query")
                self._audit_call(request, route, None, refused)
                raise refused from None
        if route.raw_body:
            return route.handler(request, self._read_body(raw, route.max_body_bytes), **params)
        if route.body is None:
            self._audit_call(request, route, None, None)
            return route.handler(request, **params)
        try:
            body = self._parse_body(raw, route.body, route.max_body_bytes)
        except Problem as refused:
            self._audit_call(request, route, None, refused)
            raise
        self._audit_call(request, route, body, None)
        return route.handler(request, body, **params)

    def _audit_call(self, request: Request, route: Route, body: BaseModel | None, problem: Problem | None) -> None:
        if self._audit is not None and request.principal is not None:
            self._audit()(request, route, body, problem)

    def _read_body(self, raw: flask.Request, limit: int | None = None) -> bytes:
        """The body as received, at most `limit` (MAX_BODY_BYTES by default; 413 beyond)."""
        limit = limit or self._settings().max_body_bytes
        too_large = Problem(413, "body-too-large", "Request body too large", f"The limit is {limit} bytes.")
        if raw.content_length is not None and raw.content_length > limit:
            raise too_large
        data = raw.stream.read(limit + 1)
        if len(data) > limit:
            raise too_large
        return data

    def _parse_body(self, raw: flask.Request, model: type[BaseModel], limit: int | None = None) -> BaseModel:
        limit = limit or self._settings().max_body_bytes
        if raw.content_length is not None and raw.content_length > limit:
            raise Problem(
                413,
                "body-too-large",
                "Request body too large",
                f"The limit is {limit} bytes.",
            )
        mimetype = raw.mimetype or ""
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as application/json.",
            )
        data = self._read_body(raw, limit)
        if _too_deep(data):
            raise Problem(
                400,
                "malformed-json",
                "Malformed JSON",
                f"The body nests deeper than {MAX_JSON_DEPTH} levels.",
            )
        try:
            payload = json.loads(data or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Problem(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise Problem(
                400,
                "malformed-json",
                "Malformed JSON",
                "The body must be a JSON object.",
            )
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise validation_problem(exc) from None

    def _render(self, result: Any, status: int) -> flask.Response:
        if isinstance(result, flask.Response):
            return result
        if not isinstance(result, Response):
            result = Response(body=result, status=status)
        if result.status == 204 or result.body is None:
            response = flask.Response(status=result.status)
        elif result.content_type == "application/json":
            response = flask.Response(
                json.dumps(result.body, default=str, ensure_ascii=False),
                status=result.status,
                mimetype="application/json",
            )
        else:
            response = flask.Response(result.body, status=result.status, content_type=result.content_type)
        response.headers.update(result.headers)
        return response

    def _problem(self, problem: Problem, instance: str) -> flask.Response:
        response = flask.Response(
            json.dumps(problem.body(instance, base=self._problem_base()), ensure_ascii=False),
            status=problem.status,
            content_type=PROBLEM_CONTENT_TYPE,
        )
        response.headers.update(problem.headers)
        if problem.status >= 500:
            return response
        log.info("request refused", status=problem.status, problem=problem.slug)
        return response

    def _problem_base(self) -> str:
        """Problem types are pages of this API: `{PUBLIC_BASE_URL}/problems/<slug>` (served by api-docs)."""
        try:
            return problem_base(self._settings().public_base_url)
        except Exception:  # settings unreadable: the problem still answers, with the default base
            return PROBLEM_BASE

    def _preflight(self, raw: flask.Request, settings: Settings) -> flask.Response:
        origin = (raw.headers.get("Origin") or "").rstrip("/")
        if origin not in settings.cors_allowed_origins:
            raise Problem(
                403,
                "cors-origin-denied",
                "Origin not allowed",
                "This origin may not call the API.",
            )
        response = flask.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    def _decorate(self, response: flask.Response, raw: flask.Request, settings: Settings) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        origin = (raw.headers.get("Origin") or "").rstrip("/")
        if origin and origin in settings.cors_allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "false"
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.headers.add("Vary", "Origin")


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit` (strings skipped); no recursion."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in (0x5B, 0x7B) else -1  # [ { open, ] } close
        if depth > limit:
            return True
    return False


def _openapi_router(app: HttpApp) -> Router:
    router = Router()

    def openapi(_: Request) -> Response:
        """This function's OpenAPI 3.1 document.

        Generated from its routes; the merged document of every function is at `/openapi.json`.
        """
        return Response(app.openapi(), headers={"Cache-Control": "public, max-age=300"})

    router.get(f"/{app.name}/openapi.json")(openapi)
    return router


def client_ip(raw: flask.Request, source: str) -> str:
    hops = [hop.strip() for hop in raw.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    if source == "load-balancer":
        return hops[-2] if len(hops) >= 2 else (raw.remote_addr or "")
    return hops[0] if hops else (raw.remote_addr or "")


def _bearer(raw: flask.Request) -> str | None:
    header = raw.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
