"""The resolver's `raw_body=True` route option: the body as bytes, exactly as received (webhook signatures)."""

from __future__ import annotations

import base64

import flask
import pytest

from shared.config import Settings
from shared.http import HttpApp, Request, Router

pytestmark = pytest.mark.policy("P13")

router = Router()


@router.post("/hook", raw_body=True)
def hook(req: Request, payload: bytes) -> dict[str, object]:
    return {"length": len(payload), "hex": payload.hex(), "signature": req.raw.headers.get("X-Sig")}


def settings() -> Settings:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    return Settings.from_env(
        {"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local", "PASSWORD_PEPPER": key, "MAX_BODY_BYTES": "64"}
    )


def call(body: bytes, content_type: str = "application/json; charset=utf-8") -> flask.Response:
    app = HttpApp("hook", settings=settings, routers=[router])
    with flask.Flask(__name__).test_request_context(
        "/hook", method="POST", data=body, headers={"Content-Type": content_type, "X-Sig": "t=1"}
    ):
        return app.resolve(flask.request)


def test_raw_body_is_passed_byte_for_byte_whatever_the_content_type() -> None:
    body = b'{\n  "b": 1,   "a": "\xc3\xa9"\n}'
    response = call(body)
    assert response.status_code == 200
    assert response.get_json() == {"length": len(body), "hex": body.hex(), "signature": "t=1"}
    assert call(b"not json at all", "text/plain").get_json()["length"] == 15
    assert call(b"").get_json()["length"] == 0


def test_raw_body_is_limited_by_max_body_bytes() -> None:
    response = call(b"x" * 65)
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
