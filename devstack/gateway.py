"""Local stand-in for the production HTTPS load balancer.

One WSGI server serves every function found as ``functions/<dir>/main.py``:

* ``/<deployed-name>/...`` goes, full path unchanged, to that HTTP function
  (deployed name = directory name with ``_`` -> ``-``; entry point = directory
  name), exactly as the load balancer forwards it;
* ``/_pubsub/<deployed-name>`` receives Pub/Sub emulator pushes and hands them
  to that CloudEvent function (functions-framework turns the raw push body into
  a CloudEvent);
* ``/openapi.json``, ``/docs`` and ``/problems/...`` go to the ``api-docs``
  function (``DOCS_PATHS``), as the load balancer's path rules send them;
* ``/_devstack/health`` and ``/_devstack/functions`` describe the gateway;
* anything else is a 404 ``application/problem+json``.

Started with ``--hold`` (as the stack starts it), the gateway answers every request but
``/_devstack/*`` with a 503 ``application/problem+json`` and ``Retry-After`` until
``POST /_devstack/open``: the stack opens it once topics, subscriptions, buckets and the Stripe
webhook exist, so no request reaches a function before what it needs.

Run as ``python -m devstack.gateway --port P [--root DIR] [--hold]``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import io
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import egress

REPO_ROOT = Path(__file__).resolve().parent.parent

# First path segments served by another function than the one they name (terraform/loadbalancer.tf).
DOCS_PATHS = {"openapi.json": "api-docs", "docs": "api-docs", "problems": "api-docs"}

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class FunctionSpec:
    """A function directory and the names production gives it."""

    dir_name: str

    @property
    def deployed_name(self) -> str:
        return self.dir_name.replace("_", "-")

    @property
    def entry_point(self) -> str:
        return self.dir_name

    @property
    def prefix(self) -> str:
        return f"/{self.deployed_name}"

    @property
    def module_name(self) -> str:
        return f"functions.{self.dir_name}.main"


def discover_functions(root: Path) -> list[FunctionSpec]:
    """Every ``functions/<dir>/main.py`` under ``root``, sorted by name."""
    base = root / "functions"
    if not base.is_dir():
        return []
    return [
        FunctionSpec(path.parent.name)
        for path in sorted(base.glob("*/main.py"))
        if path.parent.name.isidentifier() and not path.parent.name.startswith("_")
    ]


def static_trigger_topic(root: Path, spec: FunctionSpec) -> str | None:
    """``TRIGGER_TOPIC = "..."`` read from the source without importing it."""
    path = root / "functions" / spec.dir_name / "main.py"
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "TRIGGER_TOPIC":
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value
    return None


@dataclass
class LoadedFunction:
    spec: FunctionSpec
    signature: str | None = None
    topic: str | None = None
    app: WsgiApp | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.deployed_name,
            "dir": self.spec.dir_name,
            "entry_point": self.spec.entry_point,
            "prefix": self.spec.prefix,
            "signature": self.signature,
            "topic": self.topic,
            "error": self.error.strip().splitlines()[-1] if self.error else None,
        }


def _load_one(root: Path, spec: FunctionSpec) -> LoadedFunction:
    import functions_framework
    from functions_framework import _function_registry

    loaded = LoadedFunction(spec)
    source = root / "main.py"
    for var in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"):
        os.environ.pop(var, None)
    try:
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing (it must expose every entry point)")
        app = functions_framework.create_app(target=spec.entry_point, source=str(source))
        signature = _function_registry.REGISTRY_MAP.get(spec.entry_point, "http")
        loaded.signature = signature
        loaded.topic = _trigger_topic(root, spec)
        if signature == "cloudevent" and not loaded.topic:
            raise LookupError(
                f"CloudEvent function {spec.entry_point} defines no TRIGGER_TOPIC in functions/{spec.dir_name}/main.py"
            )
        loaded.app = app
    except (Exception, SystemExit):
        loaded.error = traceback.format_exc()
    finally:
        for var in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"):
            os.environ.pop(var, None)
    return loaded


def _trigger_topic(root: Path, spec: FunctionSpec) -> str | None:
    module = sys.modules.get(spec.module_name)
    if module is None:
        try:
            module = importlib.import_module(spec.module_name)
        except Exception:
            module = None
    if module is None:
        main = sys.modules.get("main")
        function = getattr(main, spec.entry_point, None) if main else None
        module = sys.modules.get(getattr(function, "__module__", "") or "")
    topic = getattr(module, "TRIGGER_TOPIC", None) if module is not None else None
    if isinstance(topic, str) and topic:
        return topic
    return static_trigger_topic(root, spec)


def load_functions(root: Path, log: Callable[[str], None] | None = None) -> list[LoadedFunction]:
    """Create the functions-framework app of every function; never raises."""
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    root = root.resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    result = []
    for spec in discover_functions(root):
        loaded = _load_one(root, spec)
        if loaded.error:
            emit(
                f"devstack gateway: function {spec.deployed_name!r} failed to load; "
                f"its routes answer 503 until fixed:\n{loaded.error}"
            )
        result.append(loaded)
    return result


def problem(
    start_response: StartResponse,
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """An RFC 9457 problem details response."""
    reasons = {404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    body = json.dumps({"type": type_, "title": title, "status": status, "detail": detail}).encode()
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _json(start_response: StartResponse, payload: object) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class GatewayApp:
    """The WSGI app that routes like the production load balancer."""

    def __init__(self, functions: list[LoadedFunction], project: str, *, hold: bool = False) -> None:
        self.functions = {f.spec.deployed_name: f for f in functions}
        self.project = project
        self._open = threading.Event()  # unset: every request but /_devstack/* is a 503 (the stack starts)
        if not hold:
            self._open.set()

    @classmethod
    def from_root(cls, root: Path, project: str | None = None, *, hold: bool = False) -> GatewayApp:
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-wizyvision")
        return cls(load_functions(root), project, hold=hold)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        """Serve requests from now on (the stack is up)."""
        self._open.set()

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.functions.values()]

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "") or "/"
        if path == "/_devstack/health":
            return _json(start_response, {"ok": True, "ready": self.is_open})
        if path == "/_devstack/functions":
            return _json(start_response, self.describe())
        if path == "/_devstack/open" and environ.get("REQUEST_METHOD") == "POST":
            self.open()
            return _json(start_response, {"ok": True, "ready": True})
        if not self.is_open:
            return problem(
                start_response,
                503,
                "Starting",
                "The local stack is still starting (emulators, topics, buckets); retry shortly.",
                headers=[("Retry-After", "1")],
            )
        if path.startswith("/_pubsub/"):
            return self._push(path.removeprefix("/_pubsub/").strip("/"), environ, start_response)
        name = path.split("/", 2)[1]
        name = DOCS_PATHS.get(name, name)
        function = self.functions.get(name)
        if function is None:
            known = ", ".join(f"/{n}" for n in self.functions) or "none"
            return problem(
                start_response,
                404,
                "Not Found",
                f"No function serves {path!r} (known prefixes: {known}).",
            )
        if function.app is None:
            return self._broken(function, start_response)
        if function.signature != "http":
            return problem(
                start_response,
                404,
                "Not Found",
                f"{name} is a {function.signature} function: it is triggered by "
                f"Pub/Sub topic {function.topic!r}, not served over HTTP.",
            )
        return function.app(environ, start_response)

    def _broken(self, function: LoadedFunction, start_response: StartResponse) -> list[bytes]:
        last = (function.error or "").strip().splitlines()[-1:] or ["unknown error"]
        return problem(
            start_response,
            503,
            "Function failed to load",
            f"{function.spec.deployed_name} failed to load: {last[0]} (see the gateway log)",
        )

    def _push(self, name: str, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        function = self.functions.get(name)
        if function is None:
            return problem(start_response, 404, "Not Found", f"No function named {name!r}.")
        if function.app is None:
            return self._broken(function, start_response)
        if function.signature == "http":
            return problem(start_response, 404, "Not Found", f"{name} is an HTTP function, not an event one.")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            payload = json.loads(body or b"{}")
            message = payload.get("message")
            # A message published with attributes only has no "data"; production
            # still delivers it, so give functions-framework the empty payload.
            if isinstance(message, dict) and "data" not in message:
                message["data"] = ""
                body = json.dumps(payload).encode()
        except (ValueError, AttributeError):
            pass
        inner = dict(environ)
        # functions-framework reads the topic from the path for the CloudEvent source.
        inner["PATH_INFO"] = f"/projects/{self.project}/topics/{function.topic}"
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        assert function.app is not None
        return function.app(inner, start_response)


def _redacted_target(target: str) -> str:
    """The request target with every query value replaced: tokens travel in query strings."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    keys = [part.partition("=")[0] for part in query.split("&") if part]
    return path + "?" + "&".join(f"{key}=…" for key in keys)


def _request_handler() -> type:
    from werkzeug.serving import WSGIRequestHandler

    class AccessLogHandler(WSGIRequestHandler):
        """Plain access log lines (no ANSI colours), query values redacted."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            target = getattr(self, "path", None)
            if target is None:
                line = self.requestline
            else:
                line = f"{self.command} {_redacted_target(target)} {self.request_version}"
            line = line.translate(self._control_char_table)
            self.log("info", '"%s" %s %s', line, code, size)

    return AccessLogHandler


def make_gateway_server(app: GatewayApp, port: int, host: str = "127.0.0.1") -> Any:
    """A threaded werkzeug server for ``app`` (port 0 picks a free one)."""
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True, request_handler=_request_handler())


class GatewayThread:
    """The gateway in a thread of the current process (functions run in-process)."""

    def __init__(self, app: GatewayApp, port: int, host: str = "127.0.0.1") -> None:
        self.app = app
        self.server = make_gateway_server(app, port, host)
        self.port = int(self.server.server_port)
        self._thread = threading.Thread(target=self.server.serve_forever, name="devstack-gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)


def print_functions(functions: Iterable[LoadedFunction], base_url: str) -> None:
    for f in functions:
        if f.error:
            state = "FAILED TO LOAD (503)"
        elif f.signature == "http":
            state = f"{base_url}{f.spec.prefix}/..."
        else:
            state = f"{f.signature}, topic {f.topic} -> {base_url}/_pubsub/{f.spec.deployed_name}"
        print(f"devstack gateway: {f.spec.deployed_name:<24} {state}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.gateway")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVSTACK_GATEWAY_PORT", 8080)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--root", type=Path, default=REPO_ROOT)
    parser.add_argument("--project", default=None)
    parser.add_argument(
        "--hold",
        action="store_true",
        help="answer 503 with Retry-After (but /_devstack/*) until POST /_devstack/open",
    )
    args = parser.parse_args(argv)

    egress.install_from_env()  # the suite's egress audit (P14): before any function is loaded
    app = GatewayApp.from_root(args.root, args.project, hold=args.hold)
    server = make_gateway_server(app, args.port, args.host)
    print_functions(app.functions.values(), f"http://localhost:{args.port}")
    held = " (503 until the stack opens it)" if args.hold else ""
    print(f"devstack gateway: listening on http://{args.host}:{args.port}{held}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
