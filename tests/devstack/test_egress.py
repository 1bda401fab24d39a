"""The egress audit itself (P14): it records real lookups, skips loopback, and its check can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import egress
from shared import datamap

pytestmark = pytest.mark.policy("P14")

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import socket, sys
from devstack import egress
egress.install(sys.argv[1])
egress.install(sys.argv[1])  # idempotent: one line per lookup, not two
for host in ("127.0.0.1", "localhost", "::1"):
    socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
socket.getaddrinfo("192.0.2.7", 443, type=socket.SOCK_STREAM)  # numeric: no DNS, but a real lookup call
sys.audit("socket.getaddrinfo", "api.hubapi.com", 443, 0, 0, 0)
sys.audit("socket.getaddrinfo", b"tracker.example.com", 443, 0, 0, 0)
"""


def test_the_audit_records_every_non_loopback_lookup_of_a_process(tmp_path: Path) -> None:
    log = tmp_path / "lookups.jsonl"
    subprocess.run([sys.executable, "-c", PROBE, str(log)], cwd=REPO, check=True, timeout=60)
    recorded = egress.hosts(log)
    assert [r["host"] for r in recorded] == ["192.0.2.7", "api.hubapi.com", "tracker.example.com"]
    assert all(set(r) == {"host", "port", "pid", "argv0"} for r in recorded)
    # What the after-suite check does with them: the processor host passes, the others fail it.
    assert [r["host"] for r in recorded if not datamap.host_allowed(r["host"])] == ["192.0.2.7", "tracker.example.com"]


def test_nothing_recorded_without_the_variable(tmp_path: Path) -> None:
    probe = "from devstack import egress; egress.install_from_env(); import socket; socket.getaddrinfo('192.0.2.7', 1)"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, timeout=60)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", True),
        ("api.localhost", True),
        ("10.0.0.1", False),
        ("evil.example.com", False),
    ],
)
def test_is_local(host: str, local: bool) -> None:
    assert egress.is_local(host) is local


def test_log_lines_are_json(tmp_path: Path) -> None:
    log = tmp_path / "l.jsonl"
    log.write_text(json.dumps({"host": "a.example", "port": "1", "pid": 1, "argv0": "x"}) + "\n\n")
    assert egress.hosts(log) == [{"host": "a.example", "port": "1", "pid": 1, "argv0": "x"}]
    assert egress.hosts(tmp_path / "missing") == []
