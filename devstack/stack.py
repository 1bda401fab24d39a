"""The local Google Cloud stack: emulators, SMTP sink and gateway, as one object."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from devstack import pubsub
from devstack.errors import DevstackError
from devstack.http import get, request
from devstack.mail import MailSink, SmtpSink
from devstack.procs import (
    ManagedProcess,
    describe_pid,
    free_port,
    kill_group,
    live_owner,
    pgid_of,
    port_in_use,
    port_owner,
    read_cmdline,
    reap_stale,
    wait_until,
)
from devstack.tools import REPO_ROOT, check_tools, firebase_bin

DEFAULT_PROJECT = "demo-wizyvision"
MAIL_FROM = "WizyVision <no-reply@wizyvision.com>"
ALL_SERVICES = ("firestore", "pubsub", "storage", "auth", "smtp", "stripe", "gateway")
SECRET_NAMES = ("PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY", "UNSUBSCRIBE_SIGNING_KEY")
# Variables a stack exports; never inherited by the emulators from the caller.
STACK_VARS = (
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
    "SMTP_HOST",
    "SMTP_PORT",
    "APP_ENV",
    "PUBLIC_BASE_URL",
    "MAIL_FROM",
    "BUSINESS_DATA_BUCKET",
    "EXPORTS_BUCKET",
    "TELEMETRY_ARCHIVE_BUCKET",
    *SECRET_NAMES,
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRETS",
)
# What a process of ours shows in its command line (checked before killing).
MARKERS = {
    "firestore": "firestore",
    "pubsub": "pubsub",
    "storage": "gcp_storage_emulator",
    "auth": "firebase",
    "gateway": "devstack.gateway",
    "stripe": "devstack.localstripe",
}
# localstripe delivers signed events to this path of the gateway (the stripe-webhook function).
STRIPE_WEBHOOK_PATH = "/stripe-webhook"
LOCAL_DIR = REPO_ROOT / ".local"


@dataclass(frozen=True)
class Ports:
    """TCP ports of every service (hub and logging are the Firebase CLI's own)."""

    gateway: int = 8080
    firestore: int = 8681
    pubsub: int = 8682
    storage: int = 9023
    auth: int = 9099
    smtp: int = 2525
    hub: int = 4400
    logging: int = 4500
    stripe: int = 8420

    @classmethod
    def fixed(cls, environ: Mapping[str, str] | None = None) -> Ports:
        """The ``make run`` ports, each overridable by ``DEVSTACK_<NAME>_PORT``."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(f"DEVSTACK_{f.name.upper()}_PORT")
            if raw:
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise DevstackError(f"DEVSTACK_{f.name.upper()}_PORT={raw!r} is not a port number") from None
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports that are free right now (for tests)."""
        chosen: set[int] = set()
        values: dict[str, int] = {}
        for f in fields(cls):
            port = free_port()
            while port in chosen:
                port = free_port()
            chosen.add(port)
            values[f.name] = port
        return cls(**values)


def new_secret() -> str:
    """base64url (with padding) of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def new_secrets() -> dict[str, str]:
    return {name: new_secret() for name in SECRET_NAMES}


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` secrets from ``path``; generate missing ones (file mode 0600)."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
    missing = [name for name in SECRET_NAMES if not values.get(name)]
    if missing:
        for name in missing:
            values[name] = new_secret()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Local-only secrets for make run. Never commit this file.\n")
            for key, value in values.items():
                handle.write(f"{key}={value}\n")
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return {name: values[name] for name in SECRET_NAMES} | {k: v for k, v in values.items() if k not in SECRET_NAMES}


def gateway_process(
    root: Path,
    port: int,
    env: Mapping[str, str],
    log_path: Path | None,
    project: str,
    pid_dir: Path | None = None,
    host: str = "127.0.0.1",
    hold: bool = False,
) -> ManagedProcess:
    """``python -m devstack.gateway`` for the functions under ``root``, as a managed child.

    ``env`` is the full environment of the child (the stack's env on top of the caller's);
    ``log_path`` None lets the output go to the caller's terminal; ``hold`` makes it answer 503
    (``Retry-After``) to all but ``/_devstack/*`` until ``open_gateway``.
    """
    child_env = dict(env)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-m",
        "devstack.gateway",
        "--host",
        host,
        "--port",
        str(port),
        "--root",
        str(root),
        "--project",
        project,
        *(["--hold"] if hold else []),
    ]
    return ManagedProcess(
        name="gateway",
        argv=argv,
        env=child_env,
        log_path=log_path,
        cwd=REPO_ROOT,
        marker=MARKERS["gateway"],
        port=port,
        pid_dir=pid_dir,
    )


def open_gateway(gateway_url: str) -> None:
    """Let a gateway started with ``hold`` serve requests."""
    resp = request("POST", f"{gateway_url}/_devstack/open", body={}, timeout=10)
    if resp.status != 200:
        raise DevstackError(f"gateway {gateway_url} answered HTTP {resp.status} when opened")


def gateway_functions(gateway_url: str) -> list[dict[str, Any]]:
    """What a gateway loaded: name, prefix, signature, topic, error (first line)."""
    resp = get(f"{gateway_url}/_devstack/functions", timeout=10)
    if resp.status != 200:
        raise DevstackError(f"gateway {gateway_url} answered HTTP {resp.status} for its function list")
    return list(resp.json())


@dataclass
class StackInfo:
    """What a running stack is: enough for a client (or another process) to use it."""

    project: str
    ports: Ports
    env: dict[str, str] = field(repr=False)  # holds the local secrets: keep them out of reprs
    run_dir: Path
    mail_dir: Path
    gateway_log: Path | None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.ports.gateway}"

    @property
    def pubsub_host(self) -> str:
        return f"127.0.0.1:{self.ports.pubsub}"

    @property
    def stripe_url(self) -> str:
        """localstripe's API base (STRIPE_API_BASE of the stack)."""
        return f"http://127.0.0.1:{self.ports.stripe}"

    @property
    def mail(self) -> MailSink:
        return MailSink(self.mail_dir)

    # -- helpers usable against any running stack --------------------------------

    @property
    def gateway_log_path(self) -> Path | None:
        return self.gateway_log

    def functions(self) -> list[dict[str, Any]]:
        """What the gateway loaded: name, prefix, signature, topic, error."""
        return gateway_functions(self.gateway_url)

    def publish(
        self,
        topic: str,
        data: bytes | str | dict[str, object],
        attributes: dict[str, str] | None = None,
    ) -> str:
        return pubsub.publish(self.pubsub_host, self.project, topic, data, attributes)

    def subscribe_functions(
        self, functions: Iterable[Mapping[str, Any]] | None = None, gateway_port: int | None = None
    ) -> list[str]:
        """Create topic + push subscription for every event function of a gateway."""
        port = gateway_port or self.ports.gateway
        items = self.functions() if functions is None else functions
        done = []
        for f in items:
            if f.get("signature") in (None, "http") or not f.get("topic") or f.get("error"):
                continue
            name = str(f["name"])
            pubsub.create_topic(self.pubsub_host, self.project, str(f["topic"]))
            pubsub.create_push_subscription(
                self.pubsub_host,
                self.project,
                str(f["topic"]),
                f"{name}-push-{port}",
                f"http://127.0.0.1:{port}/_pubsub/{name}",
            )
            done.append(name)
        return done

    def wipe_firestore(self, project: str | None = None) -> None:
        """Delete every document of `project` (default: the stack's) in the Firestore emulator."""
        url = (
            f"http://127.0.0.1:{self.ports.firestore}/emulator/v1/projects/{project or self.project}"
            "/databases/(default)/documents"
        )
        resp = request("DELETE", url, timeout=30)
        if resp.status != 200:
            raise DevstackError(f"wiping Firestore failed: HTTP {resp.status} {resp.text[:200]}")

    def register_stripe_webhook(self, gateway_url: str | None = None) -> None:
        """Make localstripe sign and deliver every event to the gateway's /stripe-webhook."""
        url = f"{gateway_url or self.gateway_url}{STRIPE_WEBHOOK_PATH}"
        secret = self.env["STRIPE_WEBHOOK_SECRETS"].split(",")[0]
        resp = request("POST", f"{self.stripe_url}/_config/webhooks/devstack", body={"url": url, "secret": secret})
        if resp.status != 200:
            raise DevstackError(f"registering the Stripe webhook failed: HTTP {resp.status} {resp.text[:200]}")

    def wipe_stripe(self) -> None:
        resp = request("DELETE", f"{self.stripe_url}/_config/data", timeout=30)
        if resp.status != 200:
            raise DevstackError(f"wiping localstripe failed: HTTP {resp.status} {resp.text[:200]}")

    def wipe_auth(self) -> None:
        url = f"http://127.0.0.1:{self.ports.auth}/emulator/v1/projects/{self.project}/accounts"
        resp = request("DELETE", url, timeout=30)
        if resp.status != 200:
            raise DevstackError(f"wiping Auth failed: HTTP {resp.status} {resp.text[:200]}")

    def to_json(self) -> str:
        data = {
            "project": self.project,
            "ports": asdict(self.ports),
            "env": self.env,
            "run_dir": str(self.run_dir),
            "mail_dir": str(self.mail_dir),
            "gateway_log": str(self.gateway_log) if self.gateway_log else None,
            "pid": os.getpid(),
        }
        return json.dumps(data, indent=2)

    @classmethod
    def attach(cls, path: Path = LOCAL_DIR / "stack.json") -> StackInfo:
        """Describe the stack a running ``make run`` wrote to ``path``."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DevstackError(f"no running stack described at {path}: {exc}") from None
        info = cls(
            project=data["project"],
            ports=Ports(**data["ports"]),
            env=dict(data["env"]),
            run_dir=Path(data["run_dir"]),
            mail_dir=Path(data["mail_dir"]),
            gateway_log=Path(data["gateway_log"]) if data.get("gateway_log") else None,
        )
        try:
            alive = get(f"{info.gateway_url}/_devstack/health").status == 200
        except OSError:
            alive = False
        if not alive:
            raise DevstackError(f"the stack described at {path} is not running (start: make run)")
        return info


class Stack(StackInfo):
    """Start and stop the whole local stack.

    >>> with Stack(ports=Ports.free(), extra_env={"BCRYPT_COST": "4"}) as stack:
    ...     stack.gateway_url, stack.env, stack.mail_dir
    """

    def __init__(
        self,
        ports: Ports | None = None,
        *,
        root: Path = REPO_ROOT,
        project: str = DEFAULT_PROJECT,
        run_dir: Path | None = None,
        mail_dir: Path | None = None,
        secrets_env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        gateway: Literal["subprocess", "thread", "none"] = "subprocess",
        gateway_log_to_file: bool = True,
        services: Iterable[str] = ALL_SERVICES,
        ready_timeout: float = 180.0,  # the Auth emulator alone needs ~15 s of CPU; a busy 2-core CI box needs more
        free_stale_ports: bool | None = None,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        if not project.startswith("demo-"):
            raise DevstackError(f"project {project!r} must start with 'demo-' (offline emulators)")
        fixed = ports is not None
        self.root = root.resolve()
        owned_tmp = run_dir is None
        run_dir = Path(tempfile.mkdtemp(prefix="devstack-")) if run_dir is None else run_dir
        run_dir = run_dir.resolve()
        self._owned_tmp = owned_tmp
        self.services = tuple(s for s in ALL_SERVICES if s in set(services))
        if gateway == "none":
            self.services = tuple(s for s in self.services if s != "gateway")
        self.gateway_mode = gateway
        self.ready_timeout = ready_timeout
        self.pid_dir = run_dir / "run"
        self.log_dir = run_dir / "logs"
        self.free_stale_ports = fixed if free_stale_ports is None else free_stale_ports
        self.log = log
        self.secrets = dict(secrets_env) if secrets_env is not None else new_secrets()
        ports = ports or Ports.free()
        super().__init__(
            project=project,
            ports=ports,
            env={},
            run_dir=run_dir,
            mail_dir=(mail_dir or run_dir / "mail").resolve(),
            gateway_log=(run_dir / "gateway.log") if gateway_log_to_file else None,
        )
        self.env = self._build_env(extra_env or {})
        self._processes: dict[str, ManagedProcess] = {}
        self._smtp: SmtpSink | None = None
        self._gateway_thread: Any = None
        self._watchdog: ManagedProcess | None = None
        self.started_in: float | None = None
        self.loaded_functions: list[dict[str, Any]] = []

    # -- environment -------------------------------------------------------------

    def _build_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        p = self.ports
        env = {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GCLOUD_PROJECT": self.project,
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{p.firestore}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{p.pubsub}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{p.storage}",
            "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{p.auth}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(p.smtp),
            "APP_ENV": "local",
            "PUBLIC_BASE_URL": f"http://localhost:{p.gateway}",
            "MAIL_FROM": MAIL_FROM,
            # Buckets of the data map (shared/datamap.py), created in the storage emulator at start.
            "BUSINESS_DATA_BUCKET": f"{self.project}-business-data",
            "EXPORTS_BUCKET": f"{self.project}-exports",
            "TELEMETRY_ARCHIVE_BUCKET": f"{self.project}-telemetry-archive",
        }
        env.update(self.secrets)
        if "stripe" in self.services:
            # Test-mode values for localstripe, new for every stack (localstripe starts empty too).
            env.update(
                {
                    "STRIPE_API_BASE": f"http://127.0.0.1:{p.stripe}",
                    "STRIPE_SECRET_KEY": f"sk_test_devstack{secrets.token_hex(12)}",
                    "STRIPE_WEBHOOK_SECRETS": f"whsec_devstack{secrets.token_hex(16)}",
                }
            )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def _child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in STACK_VARS}
        env.update(
            {
                "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
                "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
                "NO_UPDATE_NOTIFIER": "1",
            }
        )
        env.update(extra or {})
        return env

    # -- processes ---------------------------------------------------------------

    def _service_ports(self) -> dict[str, list[int]]:
        p = self.ports
        return {
            "firestore": [p.firestore],
            "pubsub": [p.pubsub],
            "storage": [p.storage],
            "auth": [p.auth, p.hub, p.logging],
            "smtp": [p.smtp],
            "stripe": [p.stripe],
            "gateway": [p.gateway],
        }

    def _firebase_dir(self) -> Path:
        directory = self.run_dir / "firebase"
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "emulators": {
                "auth": {"host": "127.0.0.1", "port": self.ports.auth},
                "hub": {"host": "127.0.0.1", "port": self.ports.hub},
                "logging": {"host": "127.0.0.1", "port": self.ports.logging},
                "ui": {"enabled": False},
                "singleProjectMode": True,
            }
        }
        (directory / "firebase.json").write_text(json.dumps(config, indent=2) + "\n")
        return directory

    def _make_process(self, name: str) -> ManagedProcess:
        p = self.ports
        log_path = self.log_dir / f"{name}.log"
        cwd: Path | None = None
        env = self._child_env()
        if name == "firestore":
            argv = ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{p.firestore}"]
            port = p.firestore
        elif name == "pubsub":
            argv = [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port=127.0.0.1:{p.pubsub}",
                f"--project={self.project}",
                f"--data-dir={self.run_dir / 'pubsub-data'}",
            ]
            port = p.pubsub
        elif name == "storage":
            argv = [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host=127.0.0.1",
                f"--port={p.storage}",
                "--in-memory",
            ]
            port = p.storage
        elif name == "auth":
            argv = [
                str(firebase_bin(self.root if firebase_bin(self.root).exists() else REPO_ROOT)),
                "emulators:start",
                "--only",
                "auth",
                "--project",
                self.project,
            ]
            cwd = self._firebase_dir()
            # The CLI writes its hub locator to $TMPDIR/hub-<project>.json: keep each stack's apart.
            env["TMPDIR"] = str(cwd)
            port = p.auth
        elif name == "stripe":
            argv = [sys.executable, "-m", "devstack.localstripe", "--port", str(p.stripe)]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
            cwd = REPO_ROOT
            port = p.stripe
        elif name == "gateway":
            return gateway_process(
                self.root,
                p.gateway,
                self._child_env(self.env),
                self.gateway_log,
                self.project,
                pid_dir=self.pid_dir,
                hold=True,
            )
        else:
            raise ValueError(name)
        return ManagedProcess(
            name=name,
            argv=argv,
            env=env,
            log_path=log_path,
            cwd=cwd,
            marker=MARKERS[name],
            port=port,
            pid_dir=self.pid_dir,
        )

    def _ready(self, name: str) -> bool:
        p = self.ports
        if name in ("firestore", "pubsub"):
            port = p.firestore if name == "firestore" else p.pubsub
            resp = get(f"http://127.0.0.1:{port}/")
            return resp.status == 200 and resp.text.strip() == "Ok"
        if name == "storage":
            return get(f"http://127.0.0.1:{p.storage}/").status == 200
        if name == "auth":
            resp = get(f"http://127.0.0.1:{p.auth}/")
            return resp.status == 200 and bool(resp.json().get("authEmulator", {}).get("ready"))
        if name == "gateway":
            return get(f"http://127.0.0.1:{p.gateway}/_devstack/health").status == 200
        if name == "stripe":
            # Unauthenticated API calls get 401 once it listens.
            return get(f"http://127.0.0.1:{p.stripe}/v1/customers").status in (200, 401)
        raise ValueError(name)

    def _wait_ready(self, name: str) -> float:
        process = self._processes.get(name)
        started = time.monotonic()

        def died() -> str | None:
            if process is None:
                return None
            code = process.exited()
            if code is None:
                return None
            where = process.log_path or "the terminal"
            return f"{name} exited with code {code} before it was ready; last lines of {where}:\n{process.log_tail()}"

        if not wait_until(lambda: self._ready(name), self.ready_timeout, abort=died):
            tail = process.log_tail() if process else ""
            where = process.log_path if process else ""
            raise DevstackError(f"{name} was not ready within {self.ready_timeout:g}s; last lines of {where}:\n{tail}")
        return time.monotonic() - started

    def _check_ports(self) -> None:
        wanted = self._service_ports()
        for service in self.services:
            for port in wanted[service]:
                if not port_in_use(port):
                    continue
                owner = port_owner(port)
                cmd = read_cmdline(owner) if owner else ""
                # One of our emulators (by its command line) left behind by a run that no longer exists.
                ours = any(marker in cmd for marker in MARKERS.values()) and (
                    "emulator" in cmd or "devstack" in cmd or "firebase" in cmd
                )
                running_stack = live_owner(owner) if owner else None
                if owner and ours and running_stack is None and self.free_stale_ports:
                    self.log(f"devstack: port {port} held by a stale {describe_pid(owner)}; stopping it")
                    kill_group(pgid_of(owner) or owner)
                    if wait_until(lambda port=port: not port_in_use(port), 10):
                        continue
                holder = describe_pid(owner) if owner else "another process"
                if running_stack is not None:
                    holder += f", started by the running {describe_pid(running_stack)}"
                env_name = f"DEVSTACK_{service.upper()}_PORT"
                if service == "auth":
                    env_name = "DEVSTACK_AUTH_PORT / DEVSTACK_HUB_PORT / DEVSTACK_LOGGING_PORT"
                raise DevstackError(
                    f"port {port} needed by {service} is already in use by {holder}: "
                    f"stop it, or choose another port with {env_name}"
                )

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Stack:
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def _start(self) -> None:
        check_tools(self.services, self.root)
        for directory in (self.run_dir, self.log_dir, self.mail_dir, self.run_dir / "pubsub-data"):
            directory.mkdir(parents=True, exist_ok=True)
        reap_stale(self.pid_dir, log=self.log)
        self._check_ports()
        self._start_watchdog()
        if "smtp" in self.services:
            self._smtp = SmtpSink(self.mail_dir, self.ports.smtp)
            self._smtp.start()
        to_wait: list[str] = []
        for name in self.services:
            if name == "smtp" or (name == "gateway" and self.gateway_mode != "subprocess"):
                continue
            process = self._make_process(name)
            self._processes[name] = process
            process.start()
            to_wait.append(name)
        if "gateway" in self.services and self.gateway_mode == "thread":
            from devstack.gateway import GatewayApp, GatewayThread

            os.environ.update(self.env)
            app = GatewayApp.from_root(self.root, self.project, hold=True)
            self._gateway_thread = GatewayThread(app, self.ports.gateway)
            self._gateway_thread.start()
        with ThreadPoolExecutor(max_workers=max(1, len(to_wait))) as pool:
            futures = {name: pool.submit(self._wait_ready, name) for name in to_wait}
            errors = []
            for future in futures.values():
                try:
                    future.result()
                except DevstackError as exc:
                    errors.append(str(exc))
            if errors:
                raise DevstackError("\n".join(errors))
        if "storage" in self.services:
            self._create_buckets()
        if "gateway" in self.services:
            self.loaded_functions = self.functions()
            if "pubsub" in self.services:
                self.subscribe_functions(self.loaded_functions)
            if "stripe" in self.services:
                self.register_stripe_webhook()
            # Everything a function needs exists: until now the gateway answered 503 (Retry-After).
            if self._gateway_thread is not None:
                self._gateway_thread.app.open()
            else:
                open_gateway(self.gateway_url)
        # stack.json holds the local secrets of the env: owner-only.
        descriptor = self.run_dir / "stack.json"
        descriptor.unlink(missing_ok=True)
        fd = os.open(descriptor, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.to_json())

    def _create_buckets(self) -> None:
        """Every bucket the env names (`*_BUCKET`), as terraform makes them: soft delete off (an erasure is final)."""
        base = f"http://127.0.0.1:{self.ports.storage}/storage/v1/b"
        for name in sorted({value for key, value in self.env.items() if key.endswith("_BUCKET") and value}):
            resp = request("POST", f"{base}?project={self.project}", body={"name": name}, timeout=30)
            if resp.status in (200, 409):
                policy = {"softDeletePolicy": {"retentionDurationSeconds": "0"}}
                resp = request("PATCH", f"{base}/{name}", body=policy, timeout=30)
            if resp.status != 200:
                raise DevstackError(f"creating bucket {name} failed: HTTP {resp.status} {resp.text[:200]}")

    def _start_watchdog(self) -> None:
        """A child that stops the emulators if this process dies without calling stop()."""
        env = self._child_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        watchdog = ManagedProcess(
            name="watchdog",
            argv=[
                sys.executable,
                "-m",
                "devstack.watchdog",
                "--parent",
                str(os.getpid()),
                "--pid-dir",
                str(self.pid_dir),
            ],
            env=env,
            log_path=self.log_dir / "watchdog.log",
            cwd=REPO_ROOT,
        )
        watchdog.start()
        self._watchdog = watchdog

    def stop(self) -> None:
        """Stop everything this stack started (safe to call twice)."""
        with contextlib.suppress(OSError):
            (self.run_dir / "stack.json").unlink(missing_ok=True)
        if self._gateway_thread is not None:
            self._gateway_thread.stop()
            self._gateway_thread = None
        processes = list(self._processes.values())
        self._processes = {}
        if processes:
            with ThreadPoolExecutor(max_workers=len(processes)) as pool:
                list(pool.map(lambda proc: proc.stop(), processes))
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._watchdog is not None:
            self._watchdog.stop(grace=2.0)
            self._watchdog = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def dead_processes(self) -> list[str]:
        """Names of started children whose leader has exited."""
        return [name for name, proc in self._processes.items() if proc.exited() is not None]

    def process(self, name: str) -> ManagedProcess | None:
        return self._processes.get(name)

    @property
    def smtp_sink(self) -> SmtpSink | None:
        """The SMTP sink of this stack (tests stop and restart it: an SMTP relay outage)."""
        return self._smtp

    # -- display ---------------------------------------------------------------------

    def describe(self) -> str:
        p = self.ports
        rows: list[tuple[str, str, str]] = []
        labels = {
            "firestore": ("Firestore emulator", f"127.0.0.1:{p.firestore}", "FIRESTORE_EMULATOR_HOST"),
            "pubsub": ("Pub/Sub emulator", f"127.0.0.1:{p.pubsub}", "PUBSUB_EMULATOR_HOST"),
            "storage": ("Cloud Storage emulator", f"http://127.0.0.1:{p.storage}", "STORAGE_EMULATOR_HOST"),
            "auth": (
                "Firebase Auth emulator",
                f"127.0.0.1:{p.auth}",
                f"FIREBASE_AUTH_EMULATOR_HOST (hub {p.hub}, logging {p.logging})",
            ),
            "smtp": ("SMTP sink", f"127.0.0.1:{p.smtp}", f"mail -> {self._rel(self.mail_dir)}/"),
            "stripe": (
                "Stripe (localstripe)",
                self.stripe_url,
                f"STRIPE_API_BASE; signed webhooks -> {self.public_url}{STRIPE_WEBHOOK_PATH}",
            ),
        }
        for service in self.services:
            if service in labels:
                rows.append(labels[service])
        lines = [f"Local stack (project {self.project})", ""]
        width = max((len(r[0]) for r in rows), default=10)
        for label, where, note in rows:
            lines.append(f"  {label:<{width}}  {where:<24}  {note}")
        if "gateway" in self.services:
            lines += ["", f"  Functions via the gateway {self.public_url}:"]
            if not self.loaded_functions:
                lines.append("    (no functions/*/main.py found)")
            fw = max((len(str(f["name"])) for f in self.loaded_functions), default=4)
            for f in self.loaded_functions:
                name = str(f["name"])
                if f.get("error"):
                    where = f"FAILED TO LOAD: {f['error']}"
                elif f.get("signature") == "http":
                    where = f"{self.public_url}{f['prefix']}/…"
                else:
                    where = f"event function, topic {f['topic']} (push -> /_pubsub/{name})"
                lines.append(f"    {name:<{fw}}  {where}")
        lines += ["", f"  Logs: {self._rel(self.log_dir)}/   Env: {self._rel(self.run_dir / 'stack.json')}"]
        return "\n".join(lines)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
