"""Process hygiene: stale pid files, ports held by stale emulators, tool checks, secrets, ports."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from devstack import DevstackError, Ports, Stack
from devstack.procs import (
    PidRecord,
    free_port,
    group_members,
    listening_inodes,
    port_in_use,
    port_owner,
    reap_stale,
    wait_until,
    write_pid_file,
)
from devstack.stack import SECRET_NAMES, load_or_create_secrets
from devstack.tools import check_tools

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")

SLEEPER = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # devstack-test-child'])\n"
    "time.sleep(600)  # devstack-test-stale\n"
)


def _spawn_group() -> subprocess.Popen[bytes]:
    """A leader and one child in a fresh process group, as a crashed run would leave them."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
    assert wait_until(lambda: len(group_members(proc.pid)) >= 2, 10)
    return proc


def test_stale_pid_file_kills_the_whole_process_group(tmp_path: Path) -> None:
    proc = _spawn_group()
    try:
        write_pid_file(tmp_path, PidRecord(name="firestore", pgid=proc.pid, marker="devstack-test-stale"))
        lines: list[str] = []

        killed = reap_stale(tmp_path, log=lines.append)

        assert killed == ["firestore"]
        assert proc.wait(timeout=10) is not None
        assert wait_until(lambda: not group_members(proc.pid), 10), "the child of the group survived"
        assert not list(tmp_path.glob("*.pid"))
        assert len(lines) == 1 and "stale firestore" in lines[0]
    finally:
        if group_members(proc.pid):
            os.killpg(proc.pid, 9)


def test_pid_file_of_a_recycled_pid_does_not_kill_a_stranger(tmp_path: Path) -> None:
    proc = _spawn_group()
    try:
        write_pid_file(tmp_path, PidRecord(name="pubsub", pgid=proc.pid, marker="cloud-pubsub-emulator"))

        assert reap_stale(tmp_path, log=lambda _l: None) == []

        assert proc.poll() is None, "a process that is not ours was killed"
        assert not list(tmp_path.glob("*.pid")), "the stale pid file was not removed"
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def test_garbage_pid_file_is_removed(tmp_path: Path) -> None:
    (tmp_path / "auth.pid").write_text("not json")
    assert reap_stale(tmp_path, log=lambda _l: None) == []
    assert not (tmp_path / "auth.pid").exists()


def test_port_held_by_a_foreign_process_is_reported_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        stack = Stack(
            replace(Ports.free(), smtp=port),
            run_dir=tmp_path,
            services=["smtp"],
            gateway="none",
        )

        with pytest.raises(DevstackError) as info:
            stack.start()

    message = str(info.value)
    assert "\n" not in message
    assert f"port {port} needed by smtp is already in use" in message
    assert "DEVSTACK_SMTP_PORT" in message


def test_the_port_owner_is_the_process_listening_on_loopback_or_a_wildcard() -> None:
    for address in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as ours:
            ours.bind((address, 0))
            ours.listen()
            assert port_owner(ours.getsockname()[1]) == os.getpid(), address


# Rows of /proc/net/tcp and /proc/net/tcp6: sl, local address:port (hex), remote, state (0A: listening), ...,
# inode in the tenth column.
PROC_NET_TCP = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 111 1 0 100 0 0 10 0",
    "   1: 0200007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 222 1 0 100 0 0 10 0",
    "   2: 0A00000A:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 333 1 0 100 0 0 10 0",
    "   3: 00000000:1F93 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 444 1 0 100 0 0 10 0",
    "   4: 0100007F:1F94 0100007F:D431 01 00000000:00000000 00:00000000 00000000  0  0 555 1 0 20 4 30 10 -1",
    "   5: 0100007F:1F95 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 0 1 0 100 0 0 10 0",
    "   0: 00000000000000000000000000000000:1F96 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000  0  0 666 1 0 100 0 0 10 0",
    "   1: 00000000000000000000000001000000:1F97 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000  0  0 777 1 0 100 0 0 10 0",
]


@pytest.mark.parametrize(
    ("port", "inodes"),
    [
        (0x1F90, {"111"}),  # 127.0.0.1
        (0x1F91, set()),  # 127.0.0.2: the same port number at another address is not ours
        (0x1F92, set()),  # 10.0.0.10: a runner's own listener
        (0x1F93, {"444"}),  # 0.0.0.0 covers 127.0.0.1
        (0x1F94, set()),  # an established connection, not a listener
        (0x1F95, set()),  # inode 0: a socket of another namespace, nobody to name
        (0x1F96, {"666"}),  # [::], dual-stack
        (0x1F97, set()),  # [::1] does not hold 127.0.0.1
    ],
)
def test_only_listeners_that_clash_with_loopback_count(port: int, inodes: set[str]) -> None:
    assert listening_inodes(port, PROC_NET_TCP) == inodes


MULTILINE_HOLDER = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
time.sleep(600)
"""


def test_a_holder_whose_command_line_spans_lines_is_still_named_in_one_line(tmp_path: Path) -> None:
    # CI runners start processes with `bash -c '<script>'`: the command line itself holds newlines.
    holder = subprocess.Popen([sys.executable, "-c", MULTILINE_HOLDER], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        stack = Stack(replace(Ports.free(), smtp=port), run_dir=tmp_path, services=["smtp"], gateway="none")

        with pytest.raises(DevstackError) as info:
            stack.start()
        visible = port_owner(port) is not None  # a sandbox whose /proc hides socket owners: "another process"
    finally:
        holder.kill()
        holder.wait()

    message = str(info.value)
    assert "\n" not in message
    if visible:
        assert f"pid {holder.pid} (" in message
        assert "-c import socket, sys, time sock = socket.socket()" in message


ORPHAN_LAUNCHER = """
import subprocess, sys
proc = subprocess.Popen(
    [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={sys.argv[1]}", "--in-memory"],
    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
print(proc.pid, flush=True)
"""


def _storage_emulator_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"]


def test_port_held_by_an_orphaned_stale_emulator_is_freed(tmp_path: Path) -> None:
    """A storage emulator left running by a crashed run (no pid file, parent gone) is stopped."""
    port = free_port()
    launcher = subprocess.run(
        [sys.executable, "-c", ORPHAN_LAUNCHER, str(port)], capture_output=True, text=True, check=True, timeout=30
    )
    stale_pid = int(launcher.stdout)  # its parent has exited: the emulator is an orphan now
    try:
        assert wait_until(lambda: port_in_use(port), 30)
        lines: list[str] = []
        with Stack(
            replace(Ports.free(), storage=port),
            run_dir=tmp_path,
            services=["storage"],
            gateway="none",
            log=lines.append,
        ):
            assert wait_until(lambda: not group_members(stale_pid), 10), "the stale emulator still runs"
            assert any(f"port {port} held by a stale" in line for line in lines), lines
    finally:
        if group_members(stale_pid):
            os.killpg(stale_pid, 9)
    assert not port_in_use(port), "the stack's own emulator was not stopped"


def test_port_held_by_an_emulator_of_a_running_stack_is_reported_not_killed(tmp_path: Path) -> None:
    port = free_port()
    live = subprocess.Popen(
        _storage_emulator_cmd(port), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_until(lambda: port_in_use(port), 30)
        stack = Stack(replace(Ports.free(), storage=port), run_dir=tmp_path, services=["storage"], gateway="none")
        with pytest.raises(DevstackError) as info:
            stack.start()
        message = str(info.value)
        assert "\n" not in message
        assert f"port {port} needed by storage is already in use" in message
        assert f"started by the running pid {os.getpid()}" in message
        assert live.poll() is None, "an emulator of a running stack was killed"
    finally:
        os.killpg(live.pid, 9)
        live.wait(timeout=10)


def test_missing_tool_stops_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevstackError) as info:
        check_tools(["firestore"])
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("gcloud not found: install the Google Cloud CLI")


def test_local_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "secrets.env"
    first = load_or_create_secrets(path)
    second = load_or_create_secrets(path)

    assert first == second
    assert set(first) == set(SECRET_NAMES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for value in first.values():
        assert len(base64.urlsafe_b64decode(value)) == 32
    assert first["PASSWORD_PEPPER"] != first["TOTP_ENCRYPTION_KEY"]


def test_fixed_ports_can_be_overridden_by_env() -> None:
    ports = Ports.fixed({"DEVSTACK_GATEWAY_PORT": "18080", "DEVSTACK_AUTH_PORT": "19099"})
    assert ports.gateway == 18080 and ports.auth == 19099 and ports.firestore == 8681
    with pytest.raises(DevstackError, match="DEVSTACK_SMTP_PORT"):
        Ports.fixed({"DEVSTACK_SMTP_PORT": "x"})


def test_stack_env(stack) -> None:
    env = stack.env
    assert env["APP_ENV"] == "local"
    if isinstance(stack, Stack):  # not when reusing a running `make run` stack
        assert env["BCRYPT_COST"] == "4"
    assert env["GOOGLE_CLOUD_PROJECT"].startswith("demo-")
    assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    assert env["PUBLIC_BASE_URL"] == f"http://localhost:{stack.ports.gateway}"
    assert env["MAIL_FROM"] == "WizyVision <no-reply@wizyvision.com>"
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == env["FIRESTORE_EMULATOR_HOST"]


ORPHANING_SCRIPT = """
import sys, threading
from pathlib import Path
from devstack import Stack
stack = Stack(run_dir=Path(sys.argv[1]), services=["storage"], gateway="none")
stack.start()
print(stack.ports.storage, flush=True)
threading.Event().wait(600)
"""


def test_children_are_stopped_when_the_starting_process_is_killed(tmp_path: Path) -> None:
    """The watchdog reaps the emulators of a stack whose process died without stopping them."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert owner.stdout is not None
        port = int(owner.stdout.readline())
        record = PidRecord.load((tmp_path / "run" / "storage.pid").read_text())
        assert port_in_use(port)

        os.killpg(owner.pid, 9)
        owner.wait(timeout=10)

        assert wait_until(lambda: not group_members(record.pgid), 15), "the emulator outlived its stack"
        assert wait_until(lambda: not port_in_use(port), 5)
        assert not (tmp_path / "run" / "storage.pid").exists()
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, 9)


def test_stack_repr_shows_no_secret(stack) -> None:
    text = repr(stack)
    for name in SECRET_NAMES:
        assert stack.env[name] not in text
