"""The API contract: every HTTP function's OpenAPI 3.1 document, and every problem type documented (P5)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import flask
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel, ConfigDict

from functions.api_docs import routes as api_docs
from shared.config import Settings
from shared.http import HttpApp, Request, Router
from shared.http.openapi import build_document, docs_html, merge_documents, problem_html
from shared.http.problems import PROBLEM_TYPES
from shared.telemetry.reports import BREAKDOWNS as BY_BREAKDOWNS

pytestmark = pytest.mark.policy("P5")

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIRS = api_docs.function_dirs()


def is_event_function(name: str) -> bool:
    """A CloudEvent function declares its TRIGGER_TOPIC (read without importing, as tests/infra does)."""
    tree = ast.parse((ROOT / "functions" / name / "main.py").read_text())
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TRIGGER_TOPIC" for t in node.targets)
        for node in tree.body
    )


HTTP_FUNCTIONS = [name for name in FUNCTION_DIRS if not is_event_function(name)]


def app_of(name: str) -> HttpApp:
    app = getattr(importlib.import_module(f"functions.{name}.main"), "app", None)
    assert isinstance(app, HttpApp), f"functions/{name}/main.py: an HTTP function's `app` is an HttpApp"
    return app


def validate(doc: dict) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert not errors, "not a valid OpenAPI 3.1 document:\n" + "\n".join(errors[:20])


def test_the_http_functions_are_found() -> None:
    assert {"auth", "billing", "privacy", "admin", "telemetry", "stripe_webhook", "api_docs"} <= set(HTTP_FUNCTIONS)
    assert "privacy_worker" not in HTTP_FUNCTIONS


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_each_function_document_is_valid_openapi_3_1(name: str) -> None:
    validate(app_of(name).openapi())


def test_the_merged_document_is_valid_openapi_3_1() -> None:
    validate(api_docs.merged_document())


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_every_route_of_every_http_function_is_in_its_document(name: str) -> None:
    app = app_of(name)
    doc, merged = app.openapi(), api_docs.merged_document()
    assert f"/{app.name}/openapi.json" in doc["paths"], "the built-in route serves the function's own document"
    for route in app.routes:
        where = f"{route.method} {route.template} (functions/{name})"
        path = route.template.rstrip("/") or "/"
        operation = doc["paths"].get(path, {}).get(route.method.lower())
        assert operation is not None, f"{where} is missing from /{app.name}/openapi.json"
        in_merged = merged["paths"].get(path, {}).get(route.method.lower()) is not None
        if app.public:
            assert in_merged, f"{where} missing from /openapi.json"
        else:  # an internal function (Cloud Scheduler's) is no part of the public API
            assert not in_merged, f"{where}: an internal function's route is in the public /openapi.json"
        assert str(route.status) in operation["responses"], f"{where}: its success status is not documented"
        assert set(re.findall(r"\{(\w+)\}", route.template)) == {
            p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
        }, f"{where}: path parameters"
        if route.auth:
            assert operation["security"] == [{"bearerAuth": []}] and "401" in operation["responses"], where
        if route.roles:
            assert "403" in operation["responses"], where
        if route.body is not None:
            assert {"400", "413", "415", "422"} <= set(operation["responses"]), where
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{route.body.__name__}"}, where
        for status in route.problems:
            answer = operation["responses"][str(status)]
            assert "application/problem+json" in answer["content"], where
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.template.rstrip("/") or "/") for r in app.routes}, "no operation without a route"


def _own_routes(app: HttpApp) -> list:
    """The routes a function declares (the built-in `/<function>/openapi.json` is shared/http's)."""
    return [r for r in app.routes if r.template != f"/{app.name}/openapi.json"]


def _is_json(media: str) -> bool:
    return media.startswith("application/json") or media.endswith("+json")


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_every_json_route_declares_the_model_of_its_answer(name: str) -> None:
    """A route answering JSON says what it answers (`response=`): the contract stays complete as routes are added.

    Exempt: 204 routes (no body) and pages or files (`produces=` anything but JSON)."""
    app = app_of(name)
    doc = app.openapi()
    missing = []
    for route in _own_routes(app):
        if route.status == 204 or not _is_json(route.produces):
            continue
        where = f"{route.method} {route.template} (functions/{name}/routes.py)"
        if route.response is None:
            missing.append(where)
            continue
        operation = doc["paths"][route.template.rstrip("/") or "/"][route.method.lower()]
        schema = operation["responses"][str(route.status)]["content"][route.produces]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{route.response.__name__}"}, where
        assert route.response.__name__ in doc["components"]["schemas"], where
    assert not missing, "routes without a `response=` model of their success answer:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_every_route_has_a_summary_and_pages_say_they_are_html(name: str) -> None:
    app = app_of(name)
    doc = app.openapi()
    for route in app.routes:
        where = f"{route.method} {route.template} (functions/{name})"
        assert route.summary, f"{where}: give the handler a one-line docstring (its summary)"
        operation = doc["paths"][route.template.rstrip("/") or "/"][route.method.lower()]
        assert operation["summary"] == route.summary, where
        if route.produces == "text/html":
            content = operation["responses"][str(route.status)]["content"]
            assert list(content) == ["text/html"] and content["text/html"]["schema"] == {"type": "string"}, where
    pages = [r for r in app.routes if r.method == "GET" and "render_action_page" in _source(r.handler)]
    for route in pages:
        assert route.produces == "text/html", f"GET {route.template} renders a page: declare produces='text/html'"


def _source(handler: object) -> str:
    import inspect

    try:
        return inspect.getsource(handler)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def test_routes_read_the_query_through_a_declared_model() -> None:
    """`req.params` (validated, documented) rather than `req.query` or `req.raw.args` (neither)."""
    readers = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "functions").glob("*/routes.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\breq\.query\b|\.raw\.args\b", line)
    ]
    assert not readers, "declare `query=Model` on the route and read `req.params`:\n  " + "\n  ".join(readers)
    for name in HTTP_FUNCTIONS:
        for route in app_of(name).routes:
            if "req.params" in _source(route.handler):
                assert route.query is not None, f"{route.method} {route.template} reads req.params without query="


def test_the_report_query_is_documented_and_refused_as_before() -> None:
    """`GET /telemetry/reports`: every parameter in the document; a bad one is a 422 `invalid-query` naming it."""
    from functions.telemetry.schemas import ReportParams

    operation = app_of("telemetry").openapi()["paths"]["/telemetry/reports"]["get"]
    params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(params) == {"from", "to", "by", "metric", "stream", "site", "limit", "format"}
    assert params["from"]["schema"] == {
        "type": "string",
        "format": "date",
        "title": "From",
        "description": params["from"]["description"],
    }
    assert params["format"]["schema"]["enum"] == ["json", "csv"] and not any(p["required"] for p in params.values())
    assert "422" in operation["responses"] and operation["responses"]["200"]["content"]["application/json"]

    defaults = ReportParams.model_validate({})
    assert (defaults.from_, defaults.to, defaults.by, defaults.metric, defaults.limit, defaults.format) == (
        None,
        None,
        "day",
        "events",
        20,
        "json",
    )
    assert ReportParams.model_validate({"from": "", "stream": "", "site": "", "limit": "7"}).limit == 7
    config = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local"})
    from functions.telemetry.routes import router as telemetry_router

    class Staff:
        roles = ("support",)
        id = "acc_unit"

    class Caller:
        account = Staff()

    app = HttpApp("telemetry", lambda: config, [telemetry_router], authenticator=lambda: lambda _r, _t: Caller())
    expected = {
        "from=2026-13-01": ("from", "must be a date (YYYY-MM-DD)"),
        "to=x": ("to", "must be a date (YYYY-MM-DD)"),
        "by=nope": ("by", "must be one of day, " + ", ".join(sorted(BY_BREAKDOWNS))),
        "by=": ("by", "must be one of day, " + ", ".join(sorted(BY_BREAKDOWNS))),
        "metric=x": ("metric", "must be one of events, visitors"),
        "stream=x": ("stream", "must be web or product"),
        "limit=0": ("limit", "must be between 1 and 1000"),
        "limit=ten": ("limit", "must be an integer"),
        "format=xml": ("format", "must be json or csv"),
    }
    for query, (field, message) in expected.items():
        with flask.Flask("t").test_request_context(
            f"/telemetry/reports?{query}", headers={"Authorization": "Bearer x"}
        ):
            answer = app.resolve(flask.request)
        assert answer.status_code == 422, (query, answer.json)
        assert answer.json["type"].endswith("/invalid-query") and answer.json["title"] == "Invalid query", query
        assert [(e["field"], e["message"]) for e in answer.json["errors"]] == [(field, message)], query


def test_schemas_shared_by_name_stay_apart_when_they_differ() -> None:
    first, second = Router(), Router()

    class Thing(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: int

    @first.post("/one/things", body=Thing)
    def one(_: Request, body: Thing) -> dict:
        return {}

    class Thing(BaseModel):  # the same name in another function, another shape
        b: str

    @second.post("/two/things", body=Thing)
    def two(_: Request, body: Thing) -> dict:
        return {}

    config = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local"})
    docs = [build_document(HttpApp(n, lambda: config, [r])) for n, r in (("one", first), ("two", second))]
    merged = merge_documents(docs, title="t")
    validate(merged)
    schemas = merged["components"]["schemas"]
    assert "a" in schemas["Thing"]["properties"] and "b" in schemas["TwoThing"]["properties"]
    body = merged["paths"]["/two/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TwoThing"}


def test_the_reference_page_lists_every_operation_without_third_party_assets() -> None:
    doc = api_docs.merged_document()
    page = docs_html(doc)
    for path, operations in doc["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in page.replace("&#x27;", "'"), f"{method.upper()} {path} not on /docs"
    assert "<script" not in page and "http://" not in page and "https://" not in page


# --- Problem types: every slug raised has a page ---------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SOURCE_DIRS = ("shared", "functions")


def _callee(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _slug_parameter(fn: ast.FunctionDef, skip_self: bool) -> tuple[int | None, object] | None:
    """(position among positional parameters or None, default) of a `slug` parameter, if any."""
    args = fn.args
    positional = [*args.posonlyargs, *args.args][1 if skip_self else 0 :]
    names = [a.arg for a in positional]
    if "slug" not in names and "slug" not in [a.arg for a in args.kwonlyargs]:
        return None
    defaults = dict(
        zip([a.arg for a in positional][len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
    default = defaults.get("slug")
    return (names.index("slug") if "slug" in names else None, getattr(default, "value", None))


def raised_slugs(root: Path = ROOT) -> dict[str, list[str]]:
    """Every problem slug literal in the source, with where it is (`path:line`), found with the ast:

    a string given as the `slug` argument (by position or keyword) of anything that takes one (`Problem`,
    `forbidden`, `conflict`, `unavailable`, `bad_request`, `unauthorized`, the `shared/errors.py` classes and
    any helper with a `slug` parameter), the default of such a parameter, and `slug = "..."` class attributes.
    """
    files = [path for d in SOURCE_DIRS for path in sorted((root / d).rglob("*.py"))]
    trees = {path: ast.parse(path.read_text(), str(path)) for path in files}
    found: dict[str, list[str]] = {}
    classes: dict[str, ast.ClassDef] = {}
    takes_slug: dict[tuple[Path | None, str], tuple[int | None, object]] = {}  # private names: per file

    def note(value: object, path: Path, line: int) -> None:
        if isinstance(value, str) and SLUG.match(value):
            found.setdefault(value, []).append(f"{path.relative_to(root)}:{line}")

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
                for item in node.body:
                    targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, "target", None)]
                    named_slug = any(isinstance(t, ast.Name) and t.id == "slug" for t in targets)
                    if isinstance(item, ast.Assign | ast.AnnAssign) and named_slug:
                        note(getattr(item.value, "value", None), path, item.lineno)
            elif (
                isinstance(node, ast.FunctionDef)
                and node.name != "__init__"
                and (found_param := _slug_parameter(node, skip_self=False))
            ):
                takes_slug[(path if node.name.startswith("_") else None, node.name)] = found_param
                note(found_param[1], path, node.lineno)

    def class_parameter(name: str, seen: frozenset[str] = frozenset()) -> tuple[int | None, object] | None:
        cls = classes.get(name)
        if cls is None or name in seen:
            return None
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                return _slug_parameter(item, skip_self=True)
        for base in cls.bases:
            if (base_name := _callee(base)) and (inherited := class_parameter(base_name, seen | {name})):
                return inherited
        return None

    for name in classes:
        if param := class_parameter(name):
            takes_slug.setdefault((None, name), param)

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "slug" and isinstance(keyword.value, ast.Constant):
                    note(keyword.value.value, path, node.lineno)
            name = _callee(node.func) or ""
            param = takes_slug.get((path, name)) or takes_slug.get((None, name))
            if param and param[0] is not None and len(node.args) > param[0]:
                argument = node.args[param[0]]
                if isinstance(argument, ast.Constant):
                    note(argument.value, path, node.lineno)
    return found


def test_the_slug_finder_sees_every_kind_of_raise() -> None:
    slugs = raised_slugs()
    # One of each: Problem(..), a helper, unauthorized(slug=), a class attribute, a DomainError raise, a validator.
    expected = {"malformed-json", "already-subscribed", "session-expired", "too-many-attempts", "email-taken"}
    assert expected <= set(slugs), expected - set(slugs)
    assert "limit" not in slugs, "a field name given to a helper without a slug parameter is no slug"


def test_every_problem_slug_raised_has_a_documented_type() -> None:
    missing = {slug: where for slug, where in raised_slugs().items() if slug not in PROBLEM_TYPES}
    assert not missing, (
        "problem types raised without an entry in PROBLEM_TYPES (shared/http/problems.py):\n"
        + "\n".join(f"  {slug!r} raised at {', '.join(where)}" for slug, where in sorted(missing.items()))
    )


def test_every_documented_type_has_a_page_that_explains_it() -> None:
    for slug, entry in PROBLEM_TYPES.items():
        assert entry.slug == slug and SLUG.match(slug)
        assert entry.statuses and all(400 <= s <= 599 for s in entry.statuses), slug
        assert entry.explanation.endswith(".") and entry.action, slug
        page = problem_html(slug, "https://api.example.com/problems/")
        assert page and f"https://api.example.com/problems/{slug}" in page
    assert problem_html("no-such-type", "/problems/") is None


def test_problem_types_are_pages_of_the_api_under_public_base_url() -> None:
    config = Settings.from_env(
        {"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local", "PUBLIC_BASE_URL": "https://api.example.com/"}
    )
    app = HttpApp("demo", lambda: config, [Router()])
    with flask.Flask("t").test_request_context("/demo/nothing"):
        answer = app.resolve(flask.request)
    assert answer.status_code == 404 and answer.json["type"] == "https://api.example.com/problems/not-found"


@pytest.mark.policy("P5", "P27")
@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_an_app_is_public_exactly_when_terraform_routes_it_through_the_load_balancer(name: str) -> None:
    from tests.infra.test_terraform import declared_functions

    declared = declared_functions()[name.replace("_", "-")]
    assert app_of(name).public is bool(declared["public"]), (
        f"functions/{name}: HttpApp(public=) disagrees with terraform"
    )
