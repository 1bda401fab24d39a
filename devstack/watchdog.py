"""Stop a stack's children when the process that started them dies without stopping them.

``python -m devstack.watchdog --parent PID --pid-dir DIR`` runs in its own process
group, polls ``PID`` and, once it is gone (killed, crashed), kills every process
group recorded in ``DIR`` (the same checks as a stale-run clean-up), then exits.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

from devstack.procs import reap_stale


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.watchdog")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--pid-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(args.interval):
        if not _alive(args.parent):
            with contextlib.suppress(Exception):
                reap_stale(args.pid_dir, log=lambda line: print(line.replace("stale", "orphaned"), flush=True))
            return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
