"""Route options of the resolver: `auth="optional"` and a per-route body limit (P12, P23 ingest; P5)."""

from __future__ import annotations

import json

import flask
import pytest
from pydantic import BaseModel, ConfigDict

from shared.http import HttpApp, Request, Router
from tests.unit.test_http_app import authenticator, settings

pytestmark = pytest.mark.policy("P5", "P23")


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[str]


router = Router()


@router.post("/opt/events", body=Batch, status=202, auth="optional", max_body_bytes=200_000)
def events(req: Request, body: Batch) -> dict:
    return {"who": req.principal, "n": len(body.items)}


@router.post("/opt/small", body=Batch)
def small(_: Request, body: Batch) -> dict:
    return {"n": len(body.items)}


@router.get("/opt/staff", auth="optional", roles=("support",))
def staff(req: Request) -> dict:
    return {"ok": True}


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    app = HttpApp("opt", settings, [router], authenticator=lambda: authenticator)
    flask_app = flask.Flask("opt")
    flask_app.add_url_rule("/<path:_p>", "all", lambda _p: app.resolve(flask.request), methods=["GET", "POST"])
    return flask_app.test_client()


def test_optional_auth_serves_anonymous_calls(client: flask.testing.FlaskClient) -> None:
    response = client.post("/opt/events", json={"items": ["a"]})
    assert response.status_code == 202 and response.json == {"who": None, "n": 1}


def test_optional_auth_authenticates_a_token_when_sent(client: flask.testing.FlaskClient) -> None:
    response = client.post("/opt/events", json={"items": []}, headers={"Authorization": "Bearer good"})
    assert response.json == {"who": "ada", "n": 0}


def test_an_invalid_token_is_refused_never_downgraded(client: flask.testing.FlaskClient) -> None:
    response = client.post("/opt/events", json={"items": []}, headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


def test_roles_still_imply_authentication(client: flask.testing.FlaskClient) -> None:
    assert client.get("/opt/staff").status_code == 401
    assert client.get("/opt/staff", headers={"Authorization": "Bearer support"}).status_code == 200


def test_a_route_may_raise_the_body_limit_and_others_keep_the_default(client: flask.testing.FlaskClient) -> None:
    body = json.dumps({"items": ["x" * 1000] * 100})  # ~100 kB: over MAX_BODY_BYTES (64 KiB), under 200 kB
    assert client.post("/opt/events", data=body, content_type="application/json").status_code == 202
    assert client.post("/opt/small", data=body, content_type="application/json").status_code == 413
    huge = json.dumps({"items": ["x" * 1000] * 250})
    refused = client.post("/opt/events", data=huge, content_type="application/json")
    assert refused.status_code == 413 and "200000 bytes" in refused.json["detail"]
