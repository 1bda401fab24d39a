"""The raw product-telemetry archive (P12): newline-delimited JSON in Cloud Storage, kept 90 days.

`gs://<TELEMETRY_ARCHIVE_BUCKET>/product-events/account=<account id>/dt=<YYYY-MM-DD>/<message>.ndjson`:
Hive-style partitions, by account then by day. The account comes first so that an export or an
erasure (P11, P26) finds all of an account's events under one prefix, exactly as `shared.datamap`
declares it; the day is the second partition key (one day of all accounts:
`match_glob="product-events/account=*/dt=2026-11-30/**"`), and the bucket's lifecycle rule deletes
every object 90 days after it was written. One object per Pub/Sub message, named by its id and
written only if absent (`if_generation_match=0`): a redelivery finds it there and adds nothing, and
the aggregator needs only the right to create objects, never to overwrite or delete them.

Each line is one event with the opaque account id, the plan tier and the reduced context (country,
browser family, OS family, device class). No IP address, no user agent string, no email.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc

from shared.events import PoisonMessage
from shared.telemetry.aggregator import Archive
from shared.telemetry.model import TelemetryMessage

PREFIX = "product-events/"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def object_name(day: str, account_id: str, message_id: str) -> str:
    return f"{PREFIX}account={account_id}/dt={day}/{message_id}.ndjson"


def lines(message_id: str, message: TelemetryMessage, plan: str) -> bytes:
    context = message.context
    rows: list[dict[str, Any]] = [
        {
            "message_id": message_id,
            "account_id": message.account_id,
            "event": event.name,
            "props": event.props,
            "ts": event.ts.isoformat() if event.ts else None,
            "received_at": message.received_at.isoformat(),
            "plan": plan,
            "country": context.country,
            "browser": context.browser,
            "os": context.os,
            "device": context.device,
        }
        for event in message.events
    ]
    return "".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n" for row in rows).encode()


class StorageArchive(Archive):
    def __init__(self, bucket: Callable[[], Any]) -> None:
        self._bucket = bucket

    def write(self, message_id: str, message: TelemetryMessage, plan: str) -> str:
        account_id = message.account_id or ""
        if not _SAFE_ID.match(account_id) or not _SAFE_ID.match(message_id):
            raise PoisonMessage("a product message needs an account id and a message id made of [A-Za-z0-9_-]")
        name = object_name(message.day.isoformat(), account_id, message_id)
        blob = self._bucket().blob(name)
        # Written by an earlier delivery of this message: nothing to add (the lines are the same).
        with contextlib.suppress(gexc.PreconditionFailed):
            blob.upload_from_string(
                lines(message_id, message, plan), content_type="application/x-ndjson", if_generation_match=0
            )
        return name
