"""OpenAPI 3.1 documents generated from an `HttpApp`'s routes: the contract of each HTTP function.

Each function serves its own at `GET /<function>/openapi.json` (a route `HttpApp` adds by itself); the
api-docs function merges them into `/openapi.json` and renders `/docs`. Request bodies and query
parameters come from the routes' pydantic models, path parameters from `{name}` in templates; every
error answer is a `Problem` (`application/problem+json`) whose `type` is documented at
`/problems/<slug>` (`shared/http/problems.py`).
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.http.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES

if TYPE_CHECKING:
    from shared.http.app import HttpApp, Route

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

# The `Problem` schema: RFC 9457 members plus the extensions this API adds.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details. Branch on `type`; its URI is a page that explains it.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "`{PUBLIC_BASE_URL}/problems/<slug>`"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field (422).",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
    },
    "additionalProperties": True,
}

# Problem types each HTTP-layer status stands for (the per-route ones are in the route's description).
LAYER_SLUGS: dict[int, tuple[str, ...]] = {
    400: ("malformed-json",),
    401: ("unauthenticated", "session-expired"),
    403: ("role-required", "https-required"),
    404: ("not-found",),
    405: ("method-not-allowed",),
    413: ("body-too-large",),
    415: ("unsupported-media-type",),
    422: ("validation-error", "invalid-query"),
}


def route_problem_statuses(route: Route) -> list[int]:
    """The problem answers a route may give, from its options and its declared `problems`."""
    statuses = {404, 405}
    if route.auth or route.optional_auth:
        statuses.add(401)
    if route.roles:
        statuses.add(403)
    if route.body is not None:
        statuses.update((400, 413, 415, 422))
    if route.raw_body:
        statuses.update((400, 413))
    if route.query is not None:
        statuses.add(422)
    statuses.update(route.problems)
    return sorted(s for s in statuses if s >= 400)


def operation_id(app_name: str, route: Route) -> str:
    words = re.findall(r"[A-Za-z0-9]+", f"{app_name} {route.method} {route.template}")
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _schema_of(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    """A `$ref` to `model`'s schema, hoisting it and its `$defs` into `components`."""
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(route: Route, components: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"\{(\w+)\}", route.template)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema(ref_template=REF)
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def _success(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": REASONS.get(route.status, "Success")}
    if route.status == 204:
        return answer
    media = route.produces
    if route.response is not None:
        schema = _schema_of(route.response, components, "serialization")
    elif media.startswith("application/json") or media.endswith("+json"):
        schema = {}
    else:
        schema = {"type": "string"}
    answer["content"] = {media: {"schema": schema}}
    return answer


def _problem_answer(status: int) -> dict[str, Any]:
    slugs = LAYER_SLUGS.get(status, ())
    description = REASONS.get(status, "Problem")
    if slugs:
        description += ": " + ", ".join(f"[{s}](/problems/{s})" for s in slugs)
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if status in (429, 503):
        answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 405:
        answer["headers"] = {"Allow": {"schema": {"type": "string"}, "description": "The methods the path takes."}}
    return answer


def _operation(app_name: str, route: Route, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id(app_name, route),
        "tags": [app_name],
        "summary": route.summary or f"{route.method} {route.template}",
    }
    if route.description:
        op["description"] = route.description
    if route.roles:
        roles = ", ".join(sorted(route.roles))
        op["description"] = (op.get("description", "") + f"\n\nStaff only: needs one of the roles {roles}.").strip()
    params = _parameters(route, components)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_of(route.body, components, "validation")}},
        }
    elif route.raw_body:
        op["requestBody"] = {
            "required": True,
            "description": "The raw body, exactly as sent (a signature is checked over it).",
            "content": {"application/json": {"schema": {}}},
        }
    if route.auth:
        op["security"] = [{BEARER: []}]
    elif route.optional_auth:
        op["security"] = [{}, {BEARER: []}]
    else:
        op["security"] = []
    responses: dict[str, Any] = {str(route.status): _success(route, components)}
    for status in route_problem_statuses(route):
        responses.setdefault(str(status), _problem_answer(status))
    op["responses"] = responses
    return op


def openapi_path(template: str) -> str:
    return template.rstrip("/") or "/"


def build_document(app: HttpApp, servers: Iterable[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one HTTP function."""
    components: dict[str, Any] = {"Problem": copy.deepcopy(PROBLEM_SCHEMA)}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.routes:
        operations = paths.setdefault(openapi_path(route.template), {})
        operations[route.method.lower()] = _operation(app.name, route, components)
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"WizyVision {app.name} API",
            "version": API_VERSION,
            "description": f"The `{app.name}` Cloud Function. Errors are RFC 9457 `application/problem+json`; "
            "each problem `type` is a page under `/problems/`.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The `session_token` of POST /auth/signin or /auth/google.",
                }
            },
        },
        "tags": [{"name": app.name}],
    }
    if servers:
        doc["servers"] = [{"url": url} for url in servers]
    return doc


# --- Merging the documents of several functions -------------------------------------------------------------------


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite_refs(v, renames) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name in renames:
                out["$ref"] = REF.format(model=renames[name])
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def merge_documents(documents: Iterable[dict[str, Any]], title: str, servers: Iterable[str] = ()) -> dict[str, Any]:
    """One document of many functions' documents; a schema name two functions define differently is
    prefixed with the function's name in the merged one."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    tags: list[dict[str, Any]] = []
    for doc in documents:
        prefix = _camel(doc.get("tags", [{"name": "api"}])[0]["name"])
        own = doc.get("components", {}).get("schemas", {})
        renames = {name: prefix + name for name, schema in own.items() if name in schemas and schemas[name] != schema}
        doc = _rewrite_refs(doc, renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        schemes.update(doc.get("components", {}).get("securitySchemes", {}))
        for path, operations in doc.get("paths", {}).items():
            paths.setdefault(path, {}).update(operations)
        tags.extend(doc.get("tags", []))
    merged: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": API_VERSION,
            "description": "Every HTTP function of the WizyVision backend. Errors are RFC 9457 "
            "`application/problem+json`; each problem `type` is a page under `/problems/`.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": schemes},
        "tags": tags,
    }
    if servers:
        merged["servers"] = [{"url": url} for url in servers]
    return merged


# --- Plain HTML: the reference page and the problem type pages --------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body>
{body}
</body></html>
"""


def page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _schema_html(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> str:
    """A schema as a nested list of fields (type, required, constraints), following `$ref`s a few levels."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = schemas.get(name, {})
        if depth > 3:
            return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
        return _schema_html(target, schemas, depth + 1)
    props = schema.get("properties")
    if not props:
        return f"<code>{_e(_type_label(schema))}</code>"
    required = set(schema.get("required", []))
    items = []
    for name, prop in props.items():
        label = _type_label(prop)
        flag = "required" if name in required else "optional"
        nested = ""
        if "$ref" in prop or prop.get("properties"):
            nested = _schema_html(prop, schemas, depth + 1)
        items.append(f"<li><code>{_e(name)}</code>: {_e(label)}, {flag}{_constraints(prop)}{nested}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _type_label(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " or ".join(_type_label(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_label(schema.get('items', {}))}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    keys = ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "pattern")
    found = [f"{k} {schema[k]}" for k in keys if k in schema]
    for option in schema.get("anyOf", []):
        found += [f"{k} {option[k]}" for k in keys if k in option]
    return f" <small>({_e(', '.join(found))})</small>" if found else ""


def docs_html(doc: dict[str, Any]) -> str:
    """The reference page: every operation, grouped by function, with its body, answers and problem types."""
    schemas = doc.get("components", {}).get("schemas", {})
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            groups.setdefault((op.get("tags") or ["api"])[0], []).append((method.upper(), path, op))
    parts = [
        f"<h1>{_e(doc['info']['title'])}</h1>",
        f"<p>{_e(doc['info'].get('description', ''))}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1); each function also serves '
        "its own at <code>/&lt;function&gt;/openapi.json</code>. Error types: "
        '<a href="/problems/">/problems/</a>.</p>',
        "<p>Signed-in calls send <code>Authorization: Bearer &lt;session token&gt;</code>.</p>",
        "<nav><ul>" + "".join(f'<li><a href="#fn-{_e(g)}">{_e(g)}</a></li>' for g in groups) + "</ul></nav>",
    ]
    for group, operations in groups.items():
        parts.append(f'<h2 id="fn-{_e(group)}">{_e(group)}</h2>')
        for method, path, op in operations:
            parts.append(f'<section id="{_e(op.get("operationId", ""))}">')
            parts.append(f"<h3><code>{_e(method)} {_e(path)}</code></h3>")
            parts.append(f"<p>{_e(op.get('summary', ''))}</p>")
            if op.get("description"):
                parts.append(f"<p>{_e(op['description'])}</p>")
            security = op.get("security") or []
            if security == [{}, {BEARER: []}]:
                parts.append("<p>Session: optional.</p>")
            elif security:
                parts.append("<p>Session: required (bearer token).</p>")
            params = op.get("parameters", [])
            if params:
                rows = "".join(
                    f"<li><code>{_e(p['name'])}</code> ({_e(p['in'])}, "
                    f"{'required' if p.get('required') else 'optional'}): {_e(_type_label(p.get('schema', {})))}</li>"
                    for p in params
                )
                parts.append(f"<h4>Parameters</h4><ul>{rows}</ul>")
            body = op.get("requestBody")
            if body:
                media, content = next(iter(body["content"].items()))
                parts.append(f"<h4>Body ({_e(media)})</h4>{_schema_html(content.get('schema', {}), schemas)}")
            rows = []
            for status, answer in op.get("responses", {}).items():
                media = ", ".join(answer.get("content", {}).keys()) or "no body"
                description = html.escape(answer.get("description", ""))
                description = re.sub(
                    r"\[([a-z0-9-]+)\]\(/problems/([a-z0-9-]+)\)", r'<a href="/problems/\2">\1</a>', description
                )
                rows.append(f"<li><strong>{_e(status)}</strong> {description} <small>({_e(media)})</small></li>")
            parts.append("<h4>Answers</h4><ul>" + "".join(rows) + "</ul>")
            parts.append("</section>")
    return page(doc["info"]["title"], "\n".join(parts))


def problem_index_html(base: str) -> str:
    rows = "".join(
        f'<li><a href="{_e(base)}{_e(slug)}">{_e(slug)}</a> ({_e(", ".join(map(str, t.statuses)))}): {_e(t.title)}</li>'
        for slug, t in sorted(PROBLEM_TYPES.items())
    )
    body = (
        "<h1>Problem types</h1>"
        "<p>Every error of the WizyVision API is <code>application/problem+json</code> (RFC 9457). Its "
        "<code>type</code> is one of these URIs: branch on it, never on the English <code>title</code>.</p>"
        f"<ul>{rows}</ul>"
        '<p>The operations that answer them: <a href="/docs">/docs</a>.</p>'
    )
    return page("Problem types", body)


def problem_html(slug: str, base: str) -> str | None:
    found = PROBLEM_TYPES.get(slug)
    if found is None:
        return None
    statuses = ", ".join(str(s) for s in found.statuses)
    body = (
        f"<h1>{_e(found.title)}</h1>"
        f"<p><code>type</code>: <code>{_e(base)}{_e(slug)}</code><br>HTTP status: {_e(statuses)}</p>"
        f"<h2>What happened</h2><p>{_e(found.explanation)}</p>"
        f"<h2>What to do</h2><p>{_e(found.action)}</p>"
        '<p><a href="/problems/">Every problem type</a> · <a href="/docs">API reference</a></p>'
    )
    return page(f"{found.title} ({slug})", body)
