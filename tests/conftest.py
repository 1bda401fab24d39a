"""Session-wide test set-up: markers, suite ordering, and the local stack.

* ``@pytest.mark.policy("P1", "P16")`` names the policy ids a test proves
  (``make policy`` lists which ids have tests).
* ``@pytest.mark.after_suite`` moves a test to the end of the run (for tests
  that scan everything the suite produced, such as the gateway log).
* ``stack`` (session): one local stack on free ports — Firestore, Pub/Sub,
  Storage and Auth emulators, the SMTP sink, and the gateway as a subprocess
  logging to ``stack.gateway_log`` — with ``BCRYPT_COST=4``; its env is also
  applied to this process so in-process clients reach the emulators.
  ``--devstack-reuse`` (or ``DEVSTACK_REUSE=1``) uses a running ``make run``
  stack instead.
* Egress audit (P14): this process and the stack's gateway log every host they
  look up (``devstack/egress.py``); an after-suite test fails on any host that
  is not a processor host of ``shared/datamap.py``.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from devstack import MailSink, Stack, StackInfo, egress  # noqa: E402

TEST_ENV = {
    "BCRYPT_COST": "4",
    # Privacy jobs in the gateway's worker: retry a failing step after 1, 2 s, give up after 3 attempts.
    "PRIVACY_RETRY_BASE_SECONDS": "1",
    "PRIVACY_RETRY_MAX_SECONDS": "4",
    "PRIVACY_STEP_MAX_ATTEMPTS": "3",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("devstack")
    group.addoption(
        "--devstack-reuse",
        action="store_true",
        default=os.environ.get("DEVSTACK_REUSE", "") == "1",
        help="use the stack of a running `make run` (.local/stack.json) instead of starting one",
    )
    parser.addoption(
        "--shuffle",
        type=int,
        default=None,
        metavar="SEED",
        help="run the tests in an order shuffled with SEED (the after-suite scans still run last); "
        "the suite must pass in any order",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Set before the stack starts, so the gateway (and every function it serves) inherits it.
    if not os.environ.get(egress.ENV):
        log = Path(tempfile.gettempdir()) / f"wizyvision-egress-{os.getpid()}.jsonl"
        log.unlink(missing_ok=True)  # a stale log of an earlier process with the same pid
        os.environ[egress.ENV] = str(log)
    egress.install(os.environ[egress.ENV])
    config.addinivalue_line(
        "markers",
        "policy(*ids): policy ids (P1..P30) of the Privacy and Security Policy this test proves",
    )
    config.addinivalue_line(
        "markers",
        "after_suite: run after every other test (it scans what the whole suite produced)",
    )


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    late = [item for item in items if item.get_closest_marker("after_suite") is not None]
    early = [item for item in items if item.get_closest_marker("after_suite") is None]
    seed = config.getoption("--shuffle")
    if seed is not None:
        random.Random(seed).shuffle(early)
    items[:] = early + late


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("--shuffle")
    return None if seed is None else f"test order shuffled with --shuffle {seed}"


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """The local stack for the whole session (started once, stopped at the end)."""
    saved = dict(os.environ)
    if request.config.getoption("--devstack-reuse"):
        info = StackInfo.attach()
        os.environ.update(info.env)
        try:
            yield info
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return
    running = Stack(run_dir=tmp_path_factory.mktemp("devstack"), extra_env=TEST_ENV)
    running.start()
    os.environ.update(running.env)
    try:
        yield running
    finally:
        running.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def gateway_url(stack: StackInfo) -> str:
    return stack.gateway_url


@pytest.fixture
def mail_sink(stack: StackInfo) -> MailSink:
    return stack.mail
