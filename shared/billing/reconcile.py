"""Replay the Stripe events the webhook parked (customer tied to no account) or failed on (P13).

    python -m shared.billing.reconcile            # replay them all; prints the counts as JSON
    python -m shared.billing.reconcile --list     # only list them (ids and reasons, never payloads)

Run with the webhook function's configuration (GOOGLE_CLOUD_PROJECT, STRIPE_SECRET_KEY, SMTP_*;
locally the env of `make run`, in .local/stack.json). Each event is handled again from the ids it
names: objects are re-read from Stripe, so an event older than Stripe's 30-day event retention
replays as well. A parked event whose customer is still tied to no account stays parked; tie it
first (the account id in the Stripe customer's metadata `account_id`). Exit status 1 when an event
failed again.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.billing.reconcile", description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list parked and failed events, replay nothing")
    parser.add_argument("--limit", type=int, default=500, help="at most this many events (oldest first)")
    args = parser.parse_args(argv)

    from shared.bootstrap import billing_service

    service = billing_service()
    if args.list:
        print(json.dumps(service.pending(args.limit), default=str, indent=2), flush=True)
        return 0
    counts = service.reconcile(args.limit)
    print(json.dumps({"reconcile": counts}, sort_keys=True), flush=True)
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
