"""Run localstripe, a stateful fake of the Stripe API, for the local stack.

``python -m devstack.localstripe --port P``. Two differences from the ``localstripe`` command:

* it listens on 127.0.0.1 only (the command binds every interface);
* its store stays in memory: the command pickles the whole store to the fixed path
  ``/tmp/localstripe.pickle`` after every write, which every stack on the machine would share and
  which gets slower as the store grows. A stack's Stripe starts empty, like its emulators.

Webhooks are registered by the stack (``POST /_config/webhooks/{id}``) once the gateway is up:
localstripe then signs each event with the stack's ``STRIPE_WEBHOOK_SECRETS`` and POSTs it to the
gateway's ``/stripe-webhook``, the way Stripe does.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.localstripe")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda _self: None  # type: ignore[method-assign]
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler(sys.stdout))
    print(f"devstack localstripe: listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(server.app, host=args.host, port=args.port, access_log=access, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
