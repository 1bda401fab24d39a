"""The `privacy-worker` Cloud Function: runs export and erasure requests from the privacy-jobs topic (P11, P26).

Cloud Scheduler also publishes `{"kind": "tick"}` here: the due-date check and the wake-up of waiting requests.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import privacy_worker as worker
from shared.bootstrap import settings
from shared.events import EventApp, PubSubMessage
from shared.privacy.worker import PrivacyJob

TRIGGER_TOPIC = "privacy-jobs"


def _handle(message: PubSubMessage, job: PrivacyJob) -> None:
    settings()
    worker().handle(message, job)


app = EventApp("privacy-worker", PrivacyJob, _handle)


@functions_framework.cloud_event
def privacy_worker(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
