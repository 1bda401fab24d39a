"""Egress audit: every host a Python process of the stack or the suite looks up, written to a log (P14).

`install(path)` adds an audit hook (PEP 578) on `socket.getaddrinfo`, which every Python TCP
client goes through before it connects (http.client, urllib3/requests, smtplib, and so the
stripe, firebase-admin and google-auth libraries). Each lookup of a host that is not loopback is
appended to `path` as one JSON line `{"host", "port", "pid", "argv0"}`. The suite sets
`DEVSTACK_EGRESS_LOG` before the stack starts, the gateway (and so every function it serves)
inherits it, and an after-suite test fails on any host that is not a processor host of
shared/datamap.py. gRPC's C core resolves names itself and is not seen here: the gRPC clients
(Firestore, Pub/Sub) only ever reach Google APIs or, locally, the emulators.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

ENV = "DEVSTACK_EGRESS_LOG"
_installed: set[str] = set()
_lock = threading.Lock()


def is_local(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified


def _host(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)


def install(path: str | Path) -> None:
    """Record every non-loopback host lookup of this process to `path` (idempotent)."""
    target = str(path)
    with _lock:
        if target in _installed:
            return
        _installed.add(target)
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "socket.getaddrinfo":
            return
        host = _host(args[0])
        if is_local(host):
            return
        line = json.dumps({"host": host, "port": _host(args[1]), "pid": os.getpid(), "argv0": argv0})
        with _lock, open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    sys.addaudithook(hook)


def install_from_env() -> None:
    """Install when `DEVSTACK_EGRESS_LOG` is set (the gateway calls this at start)."""
    path = os.environ.get(ENV, "").strip()
    if path:
        install(path)


def hosts(path: str | Path) -> list[dict[str, Any]]:
    """Every recorded lookup (empty when nothing was recorded)."""
    target = Path(path)
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
