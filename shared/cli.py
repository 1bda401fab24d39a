"""Operator commands: `python -m shared.cli <command>`.

    records [--format markdown|json]   the record of processing activities (GDPR Art. 30), from the data map
    grant-role (--account-id ID | --email E) --role R [--role R] [--revoke] --reason TEXT
                                       grant (or withdraw) staff roles: admin, dpo, support; creates the
                                       first admin (P10, P28, P29); written to the audit log
    erase (--account-id ID | --email E) --reason TEXT [--wait]
                                       the DPO's immediate erasure of an account (P11, P28); --wait runs
                                       it here and prints its deletion record
    cancel-account ACCOUNT_ID --reason TEXT
                                       cancel an account (P19): sessions end, subscriptions stop renewing,
                                       the holder is mailed the purge date; written to the audit log

    scheduler list | next | run JOB [--region R]
                                       the Cloud Scheduler jobs of terraform/: list them, when each runs
                                       next, or fire one now (through the gateway with --local; on the
                                       deployed project with Cloud Scheduler's run_job otherwise)
    retention-sweep [--dry-run]        run the retention sweep (P27) here; --dry-run counts per category
                                       what would be deleted and deletes nothing

Global option `--local` (before the command): run against the `make run` stack, with the environment
it wrote to `.local/stack.json` (`make cli ARGS="--local scheduler list"` does the same). Without it
the command uses the process environment (GOOGLE_CLOUD_PROJECT and so on); a missing configuration
is one line and exit status 2.

Add a command with a `_<name>(args) -> int` function and one `sub.add_parser(...)` block in
`build_parser`, with `set_defaults(run=_<name>)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from shared.config import ConfigError, Settings

if TYPE_CHECKING:
    from shared.privacy.service import PrivacyService


def _settings_or_none() -> Settings | None:
    """The settings when the environment has them (DPO_EMAIL and so on); the policy's defaults otherwise."""
    if not (os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")):
        return None
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"warning: {exc}; using the policy's defaults", file=sys.stderr)
        return None


def _records(args: argparse.Namespace) -> int:
    from shared.ropa import record_of_processing, render_markdown

    doc = record_of_processing(_settings_or_none())
    if args.format == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_markdown(doc))
    return 0


def _cli_actor() -> str:
    """Who runs the command, as the audit log names them (the operator's OS login)."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _staff_service() -> tuple[Settings, PrivacyService]:
    import logging

    from shared.bootstrap import build_privacy_service, settings

    config = settings()
    for handler in logging.getLogger().handlers:  # JSON log lines to stderr: stdout is the command's answer
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    return config, build_privacy_service(config)


def _target(service: PrivacyService, args: argparse.Namespace) -> str | None:
    if args.account_id:
        return str(args.account_id)
    found = service.account_id_for(args.email)
    if found is None:
        print(f"no account has the login {args.email}", file=sys.stderr)
    return found


def _grant_role(args: argparse.Namespace) -> int:
    from shared.errors import DomainError

    _, service = _staff_service()
    account_id = _target(service, args)
    if account_id is None:
        return 1
    actor, roles = _cli_actor(), tuple(sorted(set(args.role)))
    action = "cli revoke-role" if args.revoke else "cli grant-role"
    service.audit.record(
        actor, action, target_account_id=account_id, reason=args.reason, details={"roles": list(roles)}
    )
    add, remove = ((), roles) if args.revoke else (roles, ())
    try:
        result = service.set_roles(actor, account_id, None, args.reason, add=add, remove=remove)
    except DomainError as refused:
        print(f"refused: {refused.detail or refused.heading}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def _erase(args: argparse.Namespace) -> int:
    from shared.bootstrap import build_privacy_worker
    from shared.errors import DomainError

    config, service = _staff_service()
    account_id = _target(service, args)
    if account_id is None:
        return 1
    actor = _cli_actor()
    service.audit.record(actor, "cli erase", target_account_id=account_id, reason=args.reason)
    try:
        receipt = service.start_dpo_erasure(actor, account_id, args.reason)
    except DomainError as refused:
        print(f"refused: {refused.detail or refused.heading}", file=sys.stderr)
        return 1
    if args.wait:
        status = build_privacy_worker(config).run(receipt["request_id"])
        record = service.deletion_record(receipt["request_id"])
        print(json.dumps({"status": status, "record": record}, indent=2, default=str))
        return 0 if status == "completed" else 2
    print(json.dumps(receipt, indent=2))
    return 0


def _cancel_account(args: argparse.Namespace) -> int:
    from shared.bootstrap import build_cancellation_service
    from shared.errors import DomainError

    config, service = _staff_service()
    actor = _cli_actor()
    service.audit.record(actor, "cli cancel-account", target_account_id=args.account_id, reason=args.reason)
    try:
        answer = build_cancellation_service(config).cancel(args.account_id, actor, args.reason)
    except DomainError as refused:
        print(f"refused: {refused.detail or refused.heading}", file=sys.stderr)
        return 1
    print(json.dumps({"account_id": args.account_id, **answer}, indent=2))
    return 0


# -- Cloud Scheduler jobs and the retention sweep (P27) -------------------------------------------

LOCAL_STACK: object | None = None  # the attached `make run` stack (devstack StackInfo) under --local


class MissingConfiguration(Exception):
    """A setting the command needs is absent: one line, exit status 2."""


def _attach_local() -> None:
    """Apply the environment of the running `make run` stack (`.local/stack.json`)."""
    global LOCAL_STACK
    from devstack.errors import DevstackError
    from devstack.stack import StackInfo

    try:
        info = StackInfo.attach()
    except DevstackError as exc:
        raise MissingConfiguration(f"--local: {exc}") from None
    os.environ.update(info.env)
    LOCAL_STACK = info


def _scheduler(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from devstack.scheduler import fire, terraform_jobs

    jobs = {job.name: job for job in terraform_jobs()}
    if args.action in ("list", "next"):
        now = datetime.now(UTC)
        for job in jobs.values():
            when = f"  next {job.next_after(now).isoformat()}" if args.action == "next" else ""
            print(f"{job.name:<20} {job.schedule:<16} {job.time_zone:<14} {job.target}{when}")
        return 0
    job = jobs.get(args.job or "")
    if job is None:
        print(f"no such job {args.job!r}; terraform declares: {', '.join(jobs)}", file=sys.stderr)
        return 2
    if LOCAL_STACK is not None:
        info: Any = LOCAL_STACK
        print(f"{job.name}: {fire(job, info.gateway_url, info.publish)}")
        return 0
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if not project:
        raise MissingConfiguration("GOOGLE_CLOUD_PROJECT is not set (or use --local against make run)")
    from google.cloud import scheduler_v1

    name = f"projects/{project}/locations/{args.region}/jobs/{job.name}"
    ran = scheduler_v1.CloudSchedulerClient().run_job(name=name)
    print(f"{job.name}: asked Cloud Scheduler to run {ran.name}")
    return 0


def _retention_sweep(args: argparse.Namespace) -> int:
    from shared.bootstrap import build_retention_sweep, settings

    if not (os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")):
        raise MissingConfiguration("GOOGLE_CLOUD_PROJECT is not set (or use --local against make run)")
    report = build_retention_sweep(settings()).run(dry_run=args.dry_run)
    print(json.dumps(report.as_dict(), indent=2))
    return 1 if report.failed else 0


def _account_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--account-id", help="the opaque account id (acc_...)")
    who.add_argument("--email", help="the account's login address")
    parser.add_argument("--reason", required=True, help="why (kept in the audit log)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description="WizyVision backend operator commands")
    parser.add_argument("--local", action="store_true", help="use the running make run stack (.local/stack.json)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    records = sub.add_parser("records", help="print the record of processing activities (GDPR Art. 30)")
    records.add_argument("--format", choices=("markdown", "json"), default="markdown")
    records.set_defaults(run=_records)

    grant = sub.add_parser("grant-role", help="grant or withdraw staff roles (the first admin is made here)")
    _account_arguments(grant)
    grant.add_argument("--role", action="append", required=True, choices=("admin", "dpo", "support"))
    grant.add_argument("--revoke", action="store_true", help="withdraw the roles instead")
    grant.set_defaults(run=_grant_role)

    erase = sub.add_parser("erase", help="erase an account now, at the request made to the DPO (P28)")
    _account_arguments(erase)
    erase.add_argument("--wait", action="store_true", help="run the erasure here and print its deletion record")
    erase.set_defaults(run=_erase)

    cancel = sub.add_parser("cancel-account", help="cancel an account (P19); it is kept until its purge date")
    cancel.add_argument("account_id", metavar="ACCOUNT_ID", help="the opaque account id (acc_...)")
    cancel.add_argument("--reason", required=True, help="why (kept in the audit log)")
    cancel.set_defaults(run=_cancel_account)

    jobs = sub.add_parser("scheduler", help="the Cloud Scheduler jobs of terraform/: list, next, run JOB")
    jobs.add_argument("action", choices=("list", "next", "run"))
    jobs.add_argument("job", nargs="?", help="run: the job's name (see list)")
    jobs.add_argument("--region", default=os.environ.get("REGION", "europe-west1"), help="the deployed region")
    jobs.set_defaults(run=_scheduler)

    sweep = sub.add_parser("retention-sweep", help="run the retention sweep (P27) now")
    sweep.add_argument("--dry-run", action="store_true", help="count per category what would go; delete nothing")
    sweep.set_defaults(run=_retention_sweep)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.local:
            _attach_local()
        return int(args.run(args))
    except (MissingConfiguration, ConfigError) as exc:
        hint = "" if args.local else " (against `make run`: add --local)"
        print(f"configuration: {exc}{hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
