"""Processor credentials are Secret Manager secrets bound only to the privacy-worker (P14, P24)."""

from __future__ import annotations

import pytest

from shared import datamap
from tests.infra.test_terraform import config, declared_functions

pytestmark = pytest.mark.policy("P14", "P24")

WORKER = "privacy-worker"


def test_processor_secrets_are_declared_secrets() -> None:
    cfg = config()
    secrets = cfg.locals["processor_secrets"]
    assert set(secrets) == {"ZENDESK_API_TOKEN", "INTERCOM_TOKEN", "HUBSPOT_TOKEN"}
    assert set(secrets) <= set(cfg.locals["secret_env_vars"])


# consent-sync carries marketing consent to the two processors that send marketing (P18): their
# credentials only, never Zendesk's or Stripe's, and not the whole processor configuration.
CONSENT_SYNC = "consent-sync"
MARKETING_CREDENTIALS = {"INTERCOM_TOKEN", "HUBSPOT_TOKEN"}


def test_only_the_privacy_worker_gets_processor_credentials() -> None:
    secrets = set(config().locals["processor_secrets"])
    for name, function in declared_functions().items():
        if name == WORKER:
            continue
        held = secrets & set(function["secrets"])
        if name == CONSENT_SYNC:
            assert held == MARKETING_CREDENTIALS, f"{name} needs exactly the marketing processors' credentials"
        else:
            assert not held, f"{name} must not read processor credentials"
        assert "processor_env" not in str(function["env"]), f"{name} must not get the processor configuration"


def test_the_privacy_worker_has_every_processor_credential() -> None:
    functions = declared_functions()
    if WORKER not in functions:
        pytest.skip("no privacy-worker yet")
    worker = functions[WORKER]
    missing = set(config().locals["processor_secrets"]) - set(worker["secrets"])
    assert not missing, f"{WORKER} lacks {sorted(missing)}: erasures would fail 'not configured'"
    assert "STRIPE_SECRET_KEY" in worker["secrets"], "the Stripe adapter of the worker needs STRIPE_SECRET_KEY"
    assert "local.processor_env" in str(worker["env"])


def test_processors_disabled_lists_only_registry_names() -> None:
    condition = str(config().variables["processors_disabled"]["validation"])
    for processor in datamap.PROCESSORS:
        assert f'"{processor.name.lower()}"' in condition.replace("\\", ""), processor.name
