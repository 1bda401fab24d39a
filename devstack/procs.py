"""Child processes: own process groups, pid files, stale-run clean-up, ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.errors import DevstackError


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts or holds ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def read_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces; it ends at the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2])


def _ppid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def live_owner(pid: int, words: tuple[str, ...] = ("devstack", "pytest")) -> int | None:
    """An ancestor of ``pid``, outside its process group, that looks like a running stack.

    A stale emulator of a crashed run has been re-parented (to init or a sub-reaper);
    one that belongs to a stack still running has that stack's process as an ancestor.
    """
    group = pgid_of(pid)
    current = _ppid_of(pid)
    seen = 0
    while current and current > 1 and seen < 64:
        if pgid_of(current) != group and any(w in read_cmdline(current) for w in words):
            return current
        current = _ppid_of(current)
        seen += 1
    return None


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid``."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and pgid_of(int(entry.name)) == pgid:
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after ``grace``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive_members(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive_members(pgid):
        time.sleep(0.05)


def _alive_members(pgid: int) -> list[int]:
    alive = []
    for pid in group_members(pgid):
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            alive.append(pid)
    return alive


# Listening addresses (as /proc/net/tcp{,6} spell them) that clash with a bind on 127.0.0.1:
# 127.0.0.1 itself, 0.0.0.0, and the IPv6 wildcard and v4-mapped loopback of a dual-stack socket.
_LOOPBACK_CLASHES = {
    "0100007F",
    "00000000",
    "00000000000000000000000000000000",
    "0000000000000000FFFF00000100007F",
}


def listening_inodes(port: int, table_lines: Iterable[str]) -> set[str]:
    """Socket inodes of the rows of /proc/net/tcp{,6} that listen on `port` where it clashes with 127.0.0.1."""
    inodes: set[str] = set()
    for line in table_lines:
        parts = line.split()
        if len(parts) < 10 or ":" not in parts[1]:
            continue  # the header, or a row this kernel spells differently
        local, state, inode = parts[1], parts[3], parts[9]
        address, _, hex_port = local.rpartition(":")
        if state == "0A" and int(hex_port, 16) == port and address in _LOOPBACK_CLASHES and inode != "0":
            inodes.add(inode)
    return inodes


def port_owner(port: int) -> int | None:
    """Pid of a process listening on TCP ``127.0.0.1:port`` (or a wildcard that covers it), via /proc.

    A listener on the same port number at another address does not hold our port, so it is never named:
    CI runners listen on many ports of their own.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes(port, Path(table).read_text().splitlines())
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return int(entry.name)
    return None


def describe_pid(pid: int) -> str:
    """One line naming a process: a command line may carry newlines (a `bash -c` script), so whitespace collapses."""
    cmd = " ".join(read_cmdline(pid).split())
    if len(cmd) > 120:
        cmd = cmd[:119] + "…"
    return f"pid {pid} ({cmd})" if cmd else f"pid {pid}"


# --------------------------------------------------------------------------- pid files


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: enough to recognise our own process group later."""

    name: str
    pgid: int
    marker: str
    port: int | None = None

    def dump(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def load(cls, text: str) -> PidRecord:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            pgid=int(data["pgid"]),
            marker=str(data["marker"]),
            port=data.get("port"),
        )


def write_pid_file(pid_dir: Path, record: PidRecord) -> Path:
    pid_dir.mkdir(parents=True, exist_ok=True)
    path = pid_dir / f"{record.name}.pid"
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(record.dump())
    os.replace(tmp, path)
    return path


def reap_stale(pid_dir: Path, log: Callable[[str], None] = print) -> list[str]:
    """Kill the process groups left by a crashed previous run; remove their pid files.

    A group is killed only if one of its live members still shows the marker
    recorded when it was started (so a recycled pid is never killed).
    Returns the names of the services that were killed.
    """
    killed: list[str] = []
    if not pid_dir.is_dir():
        return killed
    for path in sorted(pid_dir.glob("*.pid")):
        try:
            record = PidRecord.load(path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        members = _alive_members(record.pgid)
        if members and any(record.marker in read_cmdline(pid) for pid in members):
            log(f"devstack: stopping stale {record.name} from a previous run (process group {record.pgid})")
            kill_group(record.pgid)
            killed.append(record.name)
        path.unlink(missing_ok=True)
    return killed


# --------------------------------------------------------------------------- process


@dataclass
class ManagedProcess:
    """One child in its own process group, with its output in a log file."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path | None
    cwd: Path | None = None
    marker: str = ""
    port: int | None = None
    pid_dir: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log_file: object | None = field(default=None, init=False)

    def start(self) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._log_file = log_file
            out: int | object = log_file
        else:
            out = None
        self.popen = subprocess.Popen(
            list(self.argv),
            env=dict(self.env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )
        if self.pid_dir is not None:
            write_pid_file(
                self.pid_dir,
                PidRecord(
                    name=self.name,
                    pgid=self.popen.pid,
                    marker=self.marker or " ".join(self.argv),
                    port=self.port,
                ),
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def exited(self) -> int | None:
        """Exit code if the leader has exited, else None."""
        return self.popen.poll() if self.popen is not None else None

    def stop(self, grace: float = 5.0) -> None:
        if self.popen is not None:
            kill_group(self.popen.pid, grace=grace)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        if self.pid_dir is not None:
            (self.pid_dir / f"{self.name}.pid").unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes.

    ``abort`` may return a reason to stop early (for example: the process died).
    Returns True on success, False on time-out; raises DevstackError on abort.
    """
    deadline = time.monotonic() + timeout
    while True:
        # Any failure (connection refused, bad JSON, ...) means "not yet".
        with contextlib.suppress(Exception):
            if check():
                return True
        if abort is not None:
            reason = abort()
            if reason:
                raise DevstackError(reason)
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
