"""The `consent-sync` Cloud Function: carries marketing consent changes to HubSpot and Intercom (P18).

`ConsentService.change` publishes `{account_id}` on the consent-sync topic; this function sets each
marketing processor to the account's answer at handling time (shared/consent/sync.py). A processor
that asks to be retried makes the push fail (5xx): the subscription redelivers with backoff, then
moves the job to consent-sync-dead-letter (terraform/pubsub.tf). Processors without credentials are
skipped and logged.
"""

from __future__ import annotations

import threading

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import settings
from shared.consent.sync import ConsentSyncer, ConsentSyncJob
from shared.events import EventApp, PubSubMessage

TRIGGER_TOPIC = "consent-sync"

_lock = threading.Lock()
_syncer: ConsentSyncer | None = None


def syncer() -> ConsentSyncer:
    global _syncer
    if _syncer is None:
        with _lock:
            if _syncer is None:
                from shared.adapters.firestore import firestore_client
                from shared.consent.stores import FirestoreConsentStore
                from shared.identity.stores import FirestoreAccounts
                from shared.processors.registry import consent_adapters

                config = settings()
                db = firestore_client(config.project_id)
                _syncer = ConsentSyncer(
                    FirestoreConsentStore(db), FirestoreAccounts(db), lambda: consent_adapters(config)
                )
    return _syncer


def _handle(message: PubSubMessage, job: ConsentSyncJob) -> None:
    syncer().handle(job)


app = EventApp("consent-sync", ConsentSyncJob, _handle)


@functions_framework.cloud_event
def consent_sync(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
