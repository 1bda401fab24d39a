"""The gateway routes like the production load balancer, against the session's real emulators.

A throw-away function tree (its own main.py and functions/) is served by a second
gateway subprocess so these tests do not depend on the application's functions.
"""

from __future__ import annotations

import base64
import json
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.http import get, request
from devstack.procs import free_port, wait_until
from devstack.stack import gateway_functions, gateway_process

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")

ROOT_MAIN = """
import importlib
import pkgutil
from pathlib import Path

_DIR = Path(__file__).resolve().parent / "functions"
ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules([str(_DIR)]) if m.ispkg)


def __getattr__(name):
    if name in ENTRY_POINTS:
        return getattr(importlib.import_module(f"functions.{name}.main"), name)
    raise AttributeError(name)
"""

ECHO = """
import json
import os

import flask
import functions_framework


@functions_framework.http
def echo_path(request: flask.Request):
    body = {
        "path": request.path,
        "query": request.query_string.decode(),
        "method": request.method,
        "body": request.get_data(as_text=True),
        "project": os.environ.get("GOOGLE_CLOUD_PROJECT"),
        "firestore": os.environ.get("FIRESTORE_EMULATOR_HOST"),
    }
    return flask.Response(json.dumps(body), status=200, mimetype="application/json")
"""

EVENT = """
import json
import os
from pathlib import Path

import functions_framework

TRIGGER_TOPIC = "{topic}"


@functions_framework.cloud_event
def on_note(event):
    out = Path(os.environ["DEVSTACK_TEST_OUT"])
    record = {{"attributes": dict(event.get_attributes()), "data": event.get_data()}}
    tmp = out / ".event.tmp"
    tmp.write_text(json.dumps(record, default=str))
    tmp.rename(out / f"event-{{event['id']}}.json")
"""

BROKEN = """
raise RuntimeError("boom at import: devstack test")
"""


@dataclass
class FixtureGateway:
    url: str
    port: int
    log: Path
    out: Path
    topic: str


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def fixture_gateway(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureGateway]:
    root = tmp_path_factory.mktemp("functions-root")
    topic = f"devstack-test-notes-{uuid.uuid4().hex[:6]}"
    _write(root / "main.py", ROOT_MAIN)
    _write(root / "functions" / "__init__.py", "")
    for name, source in {"echo_path": ECHO, "on_note": EVENT.format(topic=topic), "broken": BROKEN}.items():
        _write(root / "functions" / name / "__init__.py", "")
        _write(root / "functions" / name / "main.py", source)
    out = root / "out"
    out.mkdir()
    log = root / "gateway.log"
    port = free_port()
    env = {**stack.env, "PATH": __import__("os").environ["PATH"], "DEVSTACK_TEST_OUT": str(out)}
    process = gateway_process(root, port, env, log, stack.project)
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until(lambda: get(f"{url}/_devstack/health").status == 200, 60)
        assert ready, f"fixture gateway not ready:\n{process.log_tail()}"
        stack.subscribe_functions(gateway_functions(url), gateway_port=port)
        yield FixtureGateway(url=url, port=port, log=log, out=out, topic=topic)
    finally:
        process.stop()


def test_unknown_prefix_is_a_problem_json_404(stack) -> None:
    response = get(f"{stack.gateway_url}/no-such-function/anything?x=1")

    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["title"] == "Not Found"
    assert set(problem) >= {"type", "title", "status", "detail"}
    assert "/no-such-function/anything" in problem["detail"]


def test_root_path_is_a_problem_json_404(stack) -> None:
    response = get(f"{stack.gateway_url}/")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_http_function_receives_the_full_path_unchanged(fixture_gateway: FixtureGateway, stack) -> None:
    response = request("POST", f"{fixture_gateway.url}/echo-path/a/b?x=1&y=2", body=b"payload")

    assert response.status == 200, response.text
    echoed = response.json()
    assert echoed["path"] == "/echo-path/a/b"
    assert echoed["query"] == "x=1&y=2"
    assert echoed["method"] == "POST"
    assert echoed["body"] == "payload"
    assert echoed["project"] == stack.project
    assert echoed["firestore"] == stack.env["FIRESTORE_EMULATOR_HOST"]


def test_prefix_is_the_deployed_name_not_the_directory(fixture_gateway: FixtureGateway) -> None:
    assert get(f"{fixture_gateway.url}/echo-path").status == 200
    response = get(f"{fixture_gateway.url}/echo_path/x")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_functions_are_described(fixture_gateway: FixtureGateway) -> None:
    functions = {f["name"]: f for f in gateway_functions(fixture_gateway.url)}

    assert set(functions) == {"broken", "echo-path", "on-note"}
    assert functions["echo-path"]["signature"] == "http"
    assert functions["echo-path"]["entry_point"] == "echo_path"
    assert functions["on-note"]["signature"] == "cloudevent"
    assert functions["on-note"]["topic"] == fixture_gateway.topic
    assert "boom at import" in functions["broken"]["error"]


def test_a_broken_function_answers_503_and_is_logged_while_others_work(fixture_gateway: FixtureGateway) -> None:
    response = get(f"{fixture_gateway.url}/broken/x")

    assert response.status == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "boom at import" in response.json()["detail"]
    log = fixture_gateway.log.read_text()
    assert "function 'broken' failed to load" in log
    assert "RuntimeError: boom at import: devstack test" in log
    assert get(f"{fixture_gateway.url}/echo-path/ok").status == 200


def test_event_function_is_not_served_over_http(fixture_gateway: FixtureGateway) -> None:
    response = get(f"{fixture_gateway.url}/on-note/x")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert fixture_gateway.topic in response.json()["detail"]


def test_pubsub_push_reaches_the_cloudevent_function(fixture_gateway: FixtureGateway, stack) -> None:
    marker = uuid.uuid4().hex
    message_id = stack.publish(fixture_gateway.topic, {"marker": marker}, attributes={"kind": "test"})

    path = fixture_gateway.out / f"event-{message_id}.json"

    assert wait_until(path.exists, 30), f"no event delivered; gateway log:\n{fixture_gateway.log.read_text()[-2000:]}"
    record = json.loads(path.read_text())
    attributes, data = record["attributes"], record["data"]
    assert attributes["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert attributes["source"].endswith(f"/projects/{stack.project}/topics/{fixture_gateway.topic}")
    assert attributes["id"] == message_id
    assert data["message"]["attributes"] == {"kind": "test"}
    assert json.loads(base64.b64decode(data["message"]["data"])) == {"marker": marker}


def test_push_to_an_unknown_function_is_a_404(fixture_gateway: FixtureGateway) -> None:
    response = request("POST", f"{fixture_gateway.url}/_pubsub/nope", body={"message": {}})
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/problem+json"


def test_access_log_redacts_query_values_and_has_no_colours(fixture_gateway: FixtureGateway) -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    assert get(f"{fixture_gateway.url}/echo-path/verify?token={secret}&x=1").status == 200

    def logged() -> bool:
        return '"GET /echo-path/verify?token=…&x=… HTTP/1.1" 200' in fixture_gateway.log.read_text()

    assert wait_until(logged, 10), fixture_gateway.log.read_text()[-1500:]
    text = fixture_gateway.log.read_text()
    assert secret not in text
    assert "\x1b[" not in text
