"""Operator commands: `python -m shared.cli <command>`.

    records [--format markdown|json]   the record of processing activities (GDPR Art. 30), from the data map
    grant-role (--account-id ID | --email E) --role R [--role R] [--revoke] --reason TEXT
                                       grant (or withdraw) staff roles: admin, dpo, support; creates the
                                       first admin (P10, P28, P29); written to the audit log
    erase (--account-id ID | --email E) --reason TEXT [--wait]
                                       the DPO's immediate erasure of an account (P11, P28); --wait runs
                                       it here and prints its deletion record

Add a command with a `_<name>(args) -> int` function and one `sub.add_parser(...)` block in
`build_parser`, with `set_defaults(run=_<name>)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

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


def _account_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--account-id", help="the opaque account id (acc_...)")
    who.add_argument("--email", help="the account's login address")
    parser.add_argument("--reason", required=True, help="why (kept in the audit log)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description="WizyVision backend operator commands")
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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
