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
        assert merged["paths"].get(path, {}).get(route.method.lower()) is not None, (
            f"{where} missing from /openapi.json"
        )
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
