"""Builds one adapter per processor of shared/datamap.py, in the registry's order (the erasure order)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shared import datamap
from shared.processors import ProcessorAdapter
from shared.processors.base import ConsentSync, DisabledAdapter

if TYPE_CHECKING:
    from shared.config import Settings


def _builders() -> dict[str, Callable[[Settings], ProcessorAdapter]]:
    # Imported here: a function that never erases does not load firebase-admin or stripe for it.
    from shared.processors.google import GoogleAdapter
    from shared.processors.hubspot import HubSpotAdapter
    from shared.processors.intercom import IntercomAdapter
    from shared.processors.stripe import StripeAdapter
    from shared.processors.zendesk import ZendeskAdapter

    return {
        GoogleAdapter.name: GoogleAdapter,
        StripeAdapter.name: lambda settings: StripeAdapter(settings, erase_hook=billing_erase_hook(settings)),
        ZendeskAdapter.name: ZendeskAdapter,
        IntercomAdapter.name: IntercomAdapter,
        HubSpotAdapter.name: HubSpotAdapter,
    }


def billing_erase_hook(settings: Settings) -> Callable[[str], object] | None:
    """Billing's erasure of the account's Stripe customers (issue 3), when billing is part of this build."""
    from shared import bootstrap

    build = getattr(bootstrap, "build_billing_service", None)
    if build is None:
        return None
    return lambda account_id: build(settings).erase_account(account_id)


def build_adapters(settings: Settings) -> list[ProcessorAdapter]:
    builders = _builders()
    adapters: list[ProcessorAdapter] = []
    for processor in datamap.PROCESSORS:
        if processor.name not in builders:
            raise RuntimeError(f"processor {processor.name!r} of shared/datamap.py has no adapter (P24)")
        if processor.name.lower() in settings.processors_disabled:
            adapters.append(DisabledAdapter(processor.name))
        else:
            adapters.append(builders[processor.name](settings))
    return adapters


def consent_adapters(settings: Settings) -> list[ConsentSync]:
    """The adapters that carry marketing consent to their processor (P18): those with `sync_consent`.

    Only those are built (no other processor's client is loaded), in data-map order; a processor
    disabled in this environment (`PROCESSORS_DISABLED`) has nothing to carry it to.
    """
    builders = _builders()
    adapters: list[ConsentSync] = []
    for processor in datamap.PROCESSORS:
        build = builders.get(processor.name)
        if build is None or not hasattr(build, "sync_consent"):
            continue
        if processor.name.lower() not in settings.processors_disabled:
            adapters.append(build(settings))  # type: ignore[arg-type]
    return adapters
