"""Operator commands: `python -m shared.cli <command>`.

    records [--format markdown|json]   the record of processing activities (GDPR Art. 30), from the data map

Add a command with a `_<name>(args) -> int` function and one `sub.add_parser(...)` block in
`build_parser`, with `set_defaults(run=_<name>)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from shared.config import ConfigError, Settings


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description="WizyVision backend operator commands")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    records = sub.add_parser("records", help="print the record of processing activities (GDPR Art. 30)")
    records.add_argument("--format", choices=("markdown", "json"), default="markdown")
    records.set_defaults(run=_records)

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
