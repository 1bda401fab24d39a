"""The resolver's audit hook: every call of an authenticated route is reported, refused ones too (P10)."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import flask
import pytest
from pydantic import BaseModel, ConfigDict

from shared.config import Settings
from shared.http import HttpApp, Problem, Request, Router

pytestmark = pytest.mark.policy("P10")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str


router = Router()


@router.post("/adm/things/{thing_id}", body=Reason, roles=("dpo",))
def act(_: Request, body: Reason, thing_id: str) -> dict[str, str]:
    return {"done": thing_id}


@router.get("/adm/open")
def open_route(_: Request) -> dict[str, bool]:
    return {"ok": True}


def _client(calls: list[tuple[Any, ...]]) -> flask.testing.FlaskClient:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    config = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local", "PASSWORD_PEPPER": key})

    def authenticate(_req: Request, token: str) -> object:
        if token not in ("dpo", "user"):
            raise Problem(401, "unauthenticated", "Unauthenticated")
        return SimpleNamespace(account=SimpleNamespace(id=token, roles=[token] if token == "dpo" else []))

    def hook(request: Request, route: Any, body: Any, problem: Problem | None) -> None:
        calls.append((request.principal.account.id, route.template, body, problem.status if problem else None))

    app = HttpApp("adm", lambda: config, [router], authenticator=lambda: authenticate, audit=lambda: hook)
    flask_app = flask.Flask("adm")
    flask_app.add_url_rule("/<path:_p>", "all", lambda _p: app.resolve(flask.request), methods=["GET", "POST"])
    return flask_app.test_client()


def test_allowed_calls_are_reported_before_the_handler_with_their_body() -> None:
    calls: list[tuple[Any, ...]] = []
    response = _client(calls).post(
        "/adm/things/t1", json={"reason": "ticket 1"}, headers={"Authorization": "Bearer dpo"}
    )
    assert response.status_code == 200
    assert calls == [("dpo", "/adm/things/{thing_id}", Reason(reason="ticket 1"), None)]


def test_refused_calls_are_reported_too() -> None:
    calls: list[tuple[Any, ...]] = []
    client = _client(calls)
    assert (
        client.post("/adm/things/t1", json={"reason": "x"}, headers={"Authorization": "Bearer user"}).status_code == 403
    )
    assert client.post("/adm/things/t1", json={"nope": 1}, headers={"Authorization": "Bearer dpo"}).status_code == 422
    assert calls == [("user", "/adm/things/{thing_id}", None, 403), ("dpo", "/adm/things/{thing_id}", None, 422)]
    # Without a principal there is nobody to name: nothing is reported (the request log line remains).
    assert client.post("/adm/things/t1", json={"reason": "x"}).status_code == 401
    assert client.get("/adm/open").status_code == 200
    assert len(calls) == 2


def test_a_failing_hook_stops_the_call() -> None:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    config = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local", "PASSWORD_PEPPER": key})
    done: list[str] = []

    @router.post("/adm/side-effect", roles=("dpo",))
    def side_effect(_: Request) -> dict[str, bool]:
        done.append("x")
        return {"ok": True}

    def failing(*_args: Any) -> None:
        raise RuntimeError("audit log unavailable")

    app = HttpApp(
        "adm",
        lambda: config,
        [router],
        authenticator=lambda: lambda _r, _t: SimpleNamespace(account=SimpleNamespace(id="d", roles=["dpo"])),
        audit=lambda: failing,
    )
    flask_app = flask.Flask("adm2")
    flask_app.add_url_rule("/<path:_p>", "all", lambda _p: app.resolve(flask.request), methods=["POST"])
    response = flask_app.test_client().post("/adm/side-effect", headers={"Authorization": "Bearer t"})
    assert response.status_code == 500 and done == []
