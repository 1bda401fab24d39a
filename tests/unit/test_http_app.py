"""The HTTP resolver every function uses: problem+json, HTTPS only, headers, CORS, body checks (P5)."""

from __future__ import annotations

import base64
import json
import logging
from types import SimpleNamespace

import flask
import pytest
from pydantic import BaseModel, ConfigDict

from shared.config import Settings
from shared.http import HttpApp, Problem, Request, Response, Router
from shared.observability import JsonFormatter

pytestmark = pytest.mark.policy("P5")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


router = Router()


@router.post("/demo/items", body=Body, status=201)
def create(_: Request, body: Body) -> dict:
    return {"name": body.name, "count": body.count}


@router.get("/demo/items/{item_id}")
def read(_: Request, item_id: str) -> dict:
    if item_id == "boom":
        raise RuntimeError("bug")
    if item_id == "gone":
        raise Problem(410, "gone", "Gone", "It left.")
    return {"id": item_id}


@router.get("/demo/private", auth=True)
def private(req: Request) -> dict:
    return {"who": req.principal}


@router.get("/demo/dpo-only", roles=("dpo", "admin"))
def dpo_only(req: Request) -> dict:
    return {"ok": True}


def settings(app_env: str = "local", **kw: object) -> Settings:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    env = {"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": app_env, "PASSWORD_PEPPER": key, "TOTP_ENCRYPTION_KEY": key}
    env.update({k: str(v) for k, v in kw.items()})
    return Settings.from_env(env)


def authenticator(_req: Request, token: str) -> object:
    if token == "dpo":
        return SimpleNamespace(account=SimpleNamespace(roles=["dpo"]))
    if token == "support":
        return SimpleNamespace(account=SimpleNamespace(roles=["support"]))
    if token != "good":
        raise Problem(401, "unauthenticated", "Unauthenticated")
    return "ada"


def client(config: Settings) -> flask.testing.FlaskClient:
    app = HttpApp("demo", lambda: config, [router], authenticator=lambda: authenticator)
    flask_app = flask.Flask("demo")
    flask_app.add_url_rule(
        "/<path:_p>",
        "all",
        lambda _p: app.resolve(flask.request),
        methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
    )
    return flask_app.test_client()


@pytest.fixture
def local() -> flask.testing.FlaskClient:
    return client(settings())


def test_valid_body_and_route_status(local: flask.testing.FlaskClient) -> None:
    response = local.post("/demo/items", json={"name": "a", "count": 2})
    assert response.status_code == 201 and response.json == {"name": "a", "count": 2}


@pytest.mark.parametrize(
    ("kwargs", "status", "slug"),
    [
        ({"data": "{oops", "content_type": "application/json"}, 400, "malformed-json"),
        ({"data": "[1, 2]", "content_type": "application/json"}, 400, "malformed-json"),
        ({"data": b"\xff\xfe", "content_type": "application/json"}, 400, "malformed-json"),
        ({"json": {"name": "a", "count": "many"}}, 422, "validation-error"),
        ({"json": {"name": "a", "count": 1, "admin": True}}, 422, "validation-error"),
        ({"json": {"name": "a"}}, 422, "validation-error"),
        ({"data": "name=a", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"),
        (
            {"data": json.dumps({"name": "a" * 70_000, "count": 1}), "content_type": "application/json"},
            413,
            "body-too-large",
        ),
    ],
)
def test_bad_input_is_a_4xx_problem(local: flask.testing.FlaskClient, kwargs: dict, status: int, slug: str) -> None:
    response = local.post("/demo/items", **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json
    # The type is a page of this API (PUBLIC_BASE_URL, http://localhost:8080 in these settings).
    assert problem["type"] == f"http://localhost:8080/problems/{slug}" and problem["status"] == status
    assert problem["title"]


def test_validation_errors_never_echo_the_input(local: flask.testing.FlaskClient) -> None:
    response = local.post("/demo/items", json={"name": "a", "count": "s3cr3t-value"})
    assert "s3cr3t-value" not in response.get_data(as_text=True)
    assert response.json["errors"][0]["field"] == "count"


def test_unknown_route_method_and_raised_problem(local: flask.testing.FlaskClient) -> None:
    assert local.get("/demo/nothing").status_code == 404
    wrong = local.delete("/demo/items")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    gone = local.get("/demo/items/gone")
    assert gone.status_code == 410 and gone.json["detail"] == "It left."


def test_a_bug_is_a_500_problem_without_internals(local: flask.testing.FlaskClient) -> None:
    response = local.get("/demo/items/boom")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "RuntimeError" not in response.get_data(as_text=True)


def test_authenticated_routes_need_a_bearer_token(local: flask.testing.FlaskClient) -> None:
    missing = local.get("/demo/private")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert local.get("/demo/private", headers={"Authorization": "Bearer bad"}).status_code == 401
    assert local.get("/demo/private", headers={"Authorization": "Basic good"}).status_code == 401
    assert local.get("/demo/private", headers={"Authorization": "Bearer good"}).json == {"who": "ada"}


def test_security_headers_on_every_answer(local: flask.testing.FlaskClient) -> None:
    for response in (local.get("/demo/items/1"), local.get("/demo/nothing"), local.get("/demo/items/boom")):
        assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_plain_http_is_refused_outside_local_mode() -> None:
    production = client(settings("production"))
    refused = production.get("/demo/items/1", headers={"X-Forwarded-Proto": "http"})
    assert refused.status_code == 403 and refused.json["type"].endswith("/https-required")
    assert production.get("/demo/items/1").status_code == 403
    assert production.get("/demo/items/1", headers={"X-Forwarded-Proto": "https"}).status_code == 200


def test_cors_only_for_configured_origins() -> None:
    app = client(settings(CORS_ALLOWED_ORIGINS="https://app.wizyvision.com"))
    allowed = app.options("/demo/items", headers={"Origin": "https://app.wizyvision.com"})
    assert allowed.status_code == 204 and "POST" in allowed.headers["Access-Control-Allow-Methods"]
    denied = app.options("/demo/items", headers={"Origin": "https://evil.example"})
    assert denied.status_code == 403
    plain = app.get("/demo/items/1", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers
    ok = app.get("/demo/items/1", headers={"Origin": "https://app.wizyvision.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.wizyvision.com"


@pytest.mark.policy("P6")
def test_request_log_line_is_json_with_severity_and_trace(
    local: flask.testing.FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    trace = "0af7651916cd43dd8448eb211c80319c"
    local.get("/demo/items/1", headers={"X-Cloud-Trace-Context": f"{trace}/123;o=1"})
    formatter = JsonFormatter("demo-unit")
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.getMessage() == "request"]
    assert lines, "one request line per request"
    line = lines[-1]
    assert line["severity"] == "INFO" and line["status"] == 200
    assert line["logging.googleapis.com/trace"] == f"projects/demo-unit/traces/{trace}"


@pytest.mark.policy("P22")
def test_client_ip_behind_the_load_balancer_ignores_what_the_client_wrote() -> None:
    from shared.http.app import client_ip

    app = flask.Flask("ip")
    spoofed = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 130.211.0.1"}
    with app.test_request_context(headers=spoofed, environ_base={"REMOTE_ADDR": "169.254.1.1"}):
        assert client_ip(flask.request, "load-balancer") == "203.0.113.9"
        assert client_ip(flask.request, "first-hop") == "6.6.6.6"
    with app.test_request_context(environ_base={"REMOTE_ADDR": "169.254.1.1"}):
        assert client_ip(flask.request, "load-balancer") == "169.254.1.1"


def test_a_missing_secret_fails_the_cold_start_of_a_function_that_needs_it() -> None:
    from shared.config import ConfigError

    config = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local"})
    config.require_keys()  # a function that needs no key starts
    with pytest.raises(ConfigError, match="PASSWORD_PEPPER"):
        config.require_keys("password_pepper")


@pytest.mark.policy("P1")
def test_production_refuses_a_lowered_bcrypt_cost() -> None:
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match="BCRYPT_COST"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "production", "BCRYPT_COST": "4"})


@pytest.mark.policy("P10")
def test_role_gated_routes_need_one_of_the_roles(local: flask.testing.FlaskClient) -> None:
    assert local.get("/demo/dpo-only").status_code == 401
    assert local.get("/demo/dpo-only", headers={"Authorization": "Bearer good"}).status_code == 403
    refused = local.get("/demo/dpo-only", headers={"Authorization": "Bearer support"})
    assert refused.status_code == 403 and refused.json["type"].endswith("/role-required")
    assert local.get("/demo/dpo-only", headers={"Authorization": "Bearer dpo"}).json == {"ok": True}


@pytest.mark.parametrize(
    "data",
    [
        "[" * 5_000,  # once a RecursionError out of json.loads: a 500
        "[" * 5_000 + "]" * 5_000,
        '{"name": ' + "[" * 65 + "]" * 65 + ', "count": 1}',  # valid JSON, deeper than 64
        '{"a":' * 200 + "1" + "}" * 200,
    ],
    ids=["5000-open-brackets", "5000-balanced", "65-deep-in-a-field", "200-deep-objects"],
)
@pytest.mark.policy("P5", "P22")
def test_deeply_nested_json_is_a_400_problem_not_a_500(local: flask.testing.FlaskClient, data: str) -> None:
    response = local.post("/demo/items", data=data, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["type"].endswith("/malformed-json")


@pytest.mark.policy("P5")
def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine(local: flask.testing.FlaskClient) -> None:
    from shared.http.app import MAX_JSON_DEPTH, _too_deep

    assert not _too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert _too_deep(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    in_strings = json.dumps(["[{" * 500 + '"', "}" * 70, "\\"])  # brackets, an escaped quote and a backslash
    assert not _too_deep(in_strings.encode()) and json.loads(in_strings)
    name = "[" * 500 + '\\"' + "{" * 100
    response = local.post("/demo/items", data=json.dumps({"name": name, "count": 1}), content_type="application/json")
    assert response.status_code == 201 and response.json["name"] == name


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = 20


described = Router()


@described.get("/demo/described", query=Page, problems=(409, 503))
def described_route(req: Request) -> dict:
    """List the things.

    With paging; more text here.
    """
    return {"limit": req.params.limit}


@described.get("/demo/page", produces="text/html")
def html_page(_: Request) -> Response:
    return Response("<p>hi</p>", content_type="text/html; charset=utf-8")


@pytest.mark.policy("P5")
def test_route_metadata_is_optional_and_query_models_are_validated() -> None:
    route = described.routes[0]
    assert route.summary == "List the things." and route.description == "With paging; more text here."
    assert route.problems == (409, 503) and route.query is Page and route.produces == "application/json"
    plain = router.routes[0]  # declared with the original keywords only
    assert (plain.method, plain.body, plain.status, plain.summary, plain.query) == ("POST", Body, 201, None, None)
    config = settings()
    app = HttpApp("demo", lambda: config, [described])
    flask_app = flask.Flask("described")
    flask_app.add_url_rule("/<path:_p>", "all", lambda _p: app.resolve(flask.request))
    web = flask_app.test_client()
    assert web.get("/demo/described?limit=5").json == {"limit": 5}
    refused = web.get("/demo/described?limit=many")
    assert refused.status_code == 422 and refused.json["type"].endswith("/invalid-query")
    assert refused.json["errors"][0]["field"] == "limit"
    assert web.get("/demo/described?other=1").status_code == 422  # unknown parameters are refused too
    assert web.get("/demo/page").headers["Content-Type"].startswith("text/html")


@pytest.mark.policy("P5")
def test_every_app_serves_its_own_openapi_document(local: flask.testing.FlaskClient) -> None:
    response = local.get("/demo/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    doc = response.json
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] == "WizyVision demo API"
    assert set(doc["paths"]) >= {"/demo/items", "/demo/items/{item_id}", "/demo/openapi.json"}
    assert local.post("/demo/openapi.json").status_code == 405


@pytest.mark.policy("P5")
def test_a_path_functions_framework_cannot_route_still_gets_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions_framework

    flask_app = flask.Flask("framework")  # like functions-framework: one `/<path:path>` rule
    flask_app.add_url_rule("/<path:_p>", "run", lambda _p: app.resolve(flask.request), methods=["GET"])
    monkeypatch.setattr(functions_framework, "errorhandler", flask_app.errorhandler)
    config = settings()
    app = HttpApp("demo", lambda: config, [router])
    response = flask_app.test_client().get("/demo/items/a%0Ab")  # `path` does not match a newline
    assert response.status_code == 200 and response.json == {"id": "a\nb"}
    unknown = flask_app.test_client().get("/demo/nothing%0A")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"
