"""The gateway serves nothing until the stack is up: 503 with Retry-After, then 2xx once opened.

`make run` and the test stack start the gateway with `--hold` and open it only once emulators,
buckets, topics, push subscriptions and the Stripe webhook exist; `make run` prints its one
"ready" line after that.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devstack.http import get, request
from devstack.procs import free_port, wait_until
from devstack.stack import gateway_process, open_gateway

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")

ROOT_MAIN = """
import importlib


def __getattr__(name):
    if name == "hello":
        return importlib.import_module("functions.hello.main").hello
    raise AttributeError(name)
"""

HELLO = """
import functions_framework


@functions_framework.http
def hello(request):
    return {"hello": request.path}
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_a_held_gateway_answers_503_with_retry_after_until_opened_then_2xx(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root / "main.py", ROOT_MAIN)
    _write(root / "functions" / "__init__.py", "")
    _write(root / "functions" / "hello" / "__init__.py", "")
    _write(root / "functions" / "hello" / "main.py", HELLO)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ["PATH"], "GOOGLE_CLOUD_PROJECT": "demo-ready"}
    process = gateway_process(root, port, env, tmp_path / "gateway.log", "demo-ready", hold=True)
    process.start()
    try:
        assert wait_until(lambda: get(f"{url}/_devstack/health").status == 200, 60), process.log_tail()

        # Held: /_devstack/* answers (devstack inspects it), everything else is a 503 to retry.
        assert get(f"{url}/_devstack/health").json() == {"ok": True, "ready": False}
        assert [f["name"] for f in get(f"{url}/_devstack/functions").json()] == ["hello"]
        for method, path in (("GET", "/hello/x"), ("POST", "/hello"), ("POST", "/_pubsub/hello"), ("GET", "/")):
            resp = request(method, f"{url}{path}", body={} if method == "POST" else None)
            assert resp.status == 503, (method, path, resp.status)
            assert resp.headers.get("Content-Type") == "application/problem+json"
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.json()["status"] == 503

        open_gateway(url)

        resp = get(f"{url}/hello/x")
        assert resp.status == 200 and resp.json() == {"hello": "/hello/x"}
        assert get(f"{url}/_devstack/health").json() == {"ok": True, "ready": True}
        assert "ready" not in (tmp_path / "gateway.log").read_text().lower(), "only make run says ready"
    finally:
        process.stop()


def test_the_stack_opens_its_gateway_once_started(stack: Any) -> None:
    assert get(f"{stack.gateway_url}/_devstack/health").json()["ready"] is True
    process = stack.process("gateway") if hasattr(stack, "process") else None
    if process is not None:
        assert "--hold" in process.argv, "the stack's gateway must not serve before the stack is up"
