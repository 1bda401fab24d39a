"""Command line: ``python -m devstack run | policy-ids | check-tools | wipe``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from devstack.errors import DevstackError
from devstack.stack import ALL_SERVICES, DEFAULT_PROJECT, LOCAL_DIR, Ports, Stack, StackInfo, load_or_create_secrets
from devstack.tools import check_tools


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    # SIGINT too: a shell may start us with SIGINT ignored (background job), and Ctrl-C must work.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    import os

    project = os.environ.get("DEVSTACK_PROJECT", DEFAULT_PROJECT)
    stack = Stack(
        Ports.fixed(),
        project=project,
        run_dir=LOCAL_DIR,
        secrets_env=load_or_create_secrets(LOCAL_DIR / "secrets.env"),
        gateway_log_to_file=args.gateway_log,
    )
    scheduler = None
    print(f"devstack: starting the local stack (logs in {LOCAL_DIR / 'logs'}) …", flush=True)
    try:
        stack.start()
        print("", flush=True)
        print(stack.describe(), flush=True)
        # The one line with "ready": printed once emulators, buckets, topics, push subscriptions and
        # the Stripe webhook exist and the gateway serves requests (it answered 503 until then).
        print(
            f"\ndevstack: ready at {stack.public_url} (started in {stack.started_in:.1f}s). Ctrl-C stops everything.\n",
            flush=True,
        )
        # Cloud Scheduler's jobs, read from terraform/, each on its own cron schedule.
        from devstack.scheduler import LocalScheduler, terraform_jobs

        scheduler = LocalScheduler(terraform_jobs(), stack.gateway_url, stack.publish, log=_say).start()
        stop = threading.Event()
        while not stop.wait(1.0):
            dead = stack.dead_processes()
            if dead:
                for name in dead:
                    proc = stack.process(name)
                    tail = proc.log_tail() if proc else ""
                    print(f"devstack: {name} exited unexpectedly; last log lines:\n{tail}")
                return 1
    except KeyboardInterrupt:
        print("\ndevstack: stopping …", flush=True)
        return 0
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if scheduler is not None:
            scheduler.stop()
        began = time.monotonic()
        stack.stop()
        print(f"devstack: stopped ({time.monotonic() - began:.1f}s)", flush=True)


def cmd_check_tools(args: argparse.Namespace) -> int:
    # --system: only what the OS must provide (run before the venv and node_modules exist).
    services = ("firestore", "pubsub", "node") if args.system else ALL_SERVICES
    try:
        check_tools(services)
    except DevstackError as exc:
        print(exc, file=sys.stderr)
        return 1
    what = "gcloud, java, node and npm" if args.system else "gcloud, java, node, npm and the Firebase CLI"
    print(f"devstack: {what} are present")
    return 0


def cmd_wipe(_args: argparse.Namespace) -> int:
    try:
        info = StackInfo.attach()
        info.wipe_firestore()
        info.wipe_auth()
        if "STRIPE_API_BASE" in info.env:
            info.wipe_stripe()
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    print("devstack: Firestore documents, Auth accounts and localstripe objects deleted")
    return 0


def cmd_policy_ids(args: argparse.Namespace) -> int:
    from devstack.policy import main as policy_main

    return policy_main(args.count, args.require_all, args.paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack on fixed ports until Ctrl-C")
    run.add_argument(
        "--gateway-log",
        action="store_true",
        help="write the gateway (function) output to .local/gateway.log instead of the terminal",
    )
    run.set_defaults(func=cmd_run)
    tools = sub.add_parser("check-tools", help="check gcloud, java, node, npm")
    tools.add_argument("--system", action="store_true", help="system tools only (no venv or node_modules yet)")
    tools.set_defaults(func=cmd_check_tools)
    sub.add_parser("wipe", help="delete Firestore data and Auth users of make run").set_defaults(func=cmd_wipe)
    policy = sub.add_parser("policy-ids", help="which policy ids P1..Pn have tests")
    policy.add_argument("--count", type=int, default=30)
    policy.add_argument("--require-all", action="store_true", help="exit 1 if any id has no test")
    policy.add_argument("paths", nargs="*", default=["tests"])
    policy.set_defaults(func=cmd_policy_ids)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
