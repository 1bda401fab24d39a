"""After the whole suite: every host the suite and the stack's gateway looked up is a processor's (P14, P24).

`devstack/egress.py` logs each non-loopback host lookup of the test process and of the gateway
(which serves every function) to `DEVSTACK_EGRESS_LOG`, set by tests/conftest.py before the stack
starts. Personal data may only leave to the processors declared in shared/datamap.py: any other
host fails here, with the process that looked it up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from devstack import Stack, egress
from devstack.procs import port_owner
from shared import datamap

pytestmark = [pytest.mark.after_suite, pytest.mark.policy("P14", "P24")]


def test_every_host_looked_up_during_the_suite_is_a_processor_host(stack: Any) -> None:
    path = os.environ.get(egress.ENV)
    assert path, "tests/conftest.py sets DEVSTACK_EGRESS_LOG: the audit is off"
    lookups = egress.hosts(path)
    undeclared = sorted({(r["host"], r["argv0"]) for r in lookups if not datamap.host_allowed(r["host"])})
    assert not undeclared, f"hosts not declared as processor hosts in shared/datamap.py: {undeclared}"


def test_the_gateway_runs_with_the_audit(stack: Any) -> None:
    if not isinstance(stack, Stack):
        pytest.skip("a reused make run gateway is audited only when started with DEVSTACK_EGRESS_LOG")
    pid = port_owner(stack.ports.gateway)
    if pid is None or not Path(f"/proc/{pid}/environ").exists():
        pytest.skip("cannot see the gateway's environment on this system")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    expected = f"{egress.ENV}={os.environ[egress.ENV]}".encode()
    assert expected in environ, "the gateway was started without the egress audit"
