"""The processors' HTTP client: the egress guard (P14) and the classification of answers (P11, P24)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared import datamap
from shared.config import ConfigError, Settings
from shared.processors import ProcessorError, processor_adapters
from shared.processors.http import ProcessorHttp, classify, egress_allowed, retry_after_seconds
from tests.processor_fakes import FakeApi, processor_settings

P14 = pytest.mark.policy("P14")
P24 = pytest.mark.policy("P24")


@P14
@pytest.mark.parametrize(
    ("url", "local", "allowed"),
    [
        ("https://acme.zendesk.com/api/v2/users", False, True),
        ("https://api.eu.intercom.io/contacts", False, True),
        ("https://api.hubapi.com/crm/v3", False, True),
        ("https://api.stripe.com/v1/customers", False, True),
        ("http://api.stripe.com/v1/customers", False, False),  # plain HTTP: never outside local mode
        ("https://zendesk.com.evil.example/api", False, False),
        ("https://evilzendesk.com/api", False, False),
        ("https://tracker.example.com/", False, False),
        ("http://127.0.0.1:9999/api", False, False),  # loopback only in local mode
        ("http://127.0.0.1:9999/api", True, True),
        ("http://localhost:9999/api", True, True),
        ("https://tracker.example.com/", True, False),
    ],
)
def test_egress_is_allowed_only_to_processor_hosts(url: str, local: bool, allowed: bool) -> None:
    assert egress_allowed(url, local=local) is allowed


@P14
def test_the_guard_refuses_before_any_connection_is_made() -> None:
    with FakeApi() as fake:
        # The same loopback fake, as production would see it: not a processor host, so refused.
        http = ProcessorHttp("Test", fake.url, headers={}, timeout=5, local=False)
        with pytest.raises(ProcessorError) as refused:
            http.call("GET", "/anything", "probe")
        assert refused.value.outcome.status == "failed"
        assert "egress refused" in refused.value.outcome.detail
        assert fake.requests == []
        # In local mode the fake is reachable.
        local = ProcessorHttp("Test", fake.url, headers={}, timeout=5, local=True)
        assert local.call("GET", "/anything", "probe").status == 404
        assert len(fake.requests) == 1


@P14
@pytest.mark.parametrize("variable", ["ZENDESK_API_BASE", "INTERCOM_API_BASE", "HUBSPOT_API_BASE"])
@pytest.mark.parametrize("value", ["https://tracker.example.com", "http://127.0.0.1:8000"])
def test_api_base_overrides_outside_local_mode_must_be_processor_hosts(variable: str, value: str) -> None:
    env = {"GOOGLE_CLOUD_PROJECT": "p", variable: value}
    with pytest.raises(ConfigError):
        Settings.from_env(env)
    assert Settings.from_env({**env, "APP_ENV": "local"})


@P14
def test_production_defaults_are_processor_hosts() -> None:
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "ZENDESK_SUBDOMAIN": "wizyvision"})
    for base in (settings.zendesk_api_base, settings.intercom_api_base, settings.hubspot_api_base):
        assert egress_allowed(base, local=False), base
    assert settings.zendesk_api_base == "https://wizyvision.zendesk.com"
    with pytest.raises(ConfigError):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "ZENDESK_SUBDOMAIN": "evil.example/"})


@P24
def test_disabled_processors_must_be_known() -> None:
    settings = processor_settings(PROCESSORS_DISABLED="Intercom, hubspot")
    assert settings.processors_disabled == {"intercom", "hubspot"}
    with pytest.raises(ConfigError, match="unknown"):
        processor_settings(PROCESSORS_DISABLED="intercom,mailchimp")


@P24
def test_one_adapter_per_processor_in_registry_order() -> None:
    adapters = processor_adapters(processor_settings())
    assert [a.name for a in adapters] == [p.name for p in datamap.PROCESSORS]


@P24
def test_the_stripe_adapter_calls_billing_s_erasure_hook_when_billing_is_built() -> None:
    from shared import bootstrap

    (stripe_adapter,) = [a for a in processor_adapters(processor_settings()) if a.name == "Stripe"]
    assert (stripe_adapter.erase_hook is not None) == hasattr(bootstrap, "build_billing_service")


@pytest.mark.policy("P11")
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, "not_found"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (422, "failed"),
    ],
)
def test_classification(status: int, expected: str) -> None:
    assert classify(status, "call").status == expected


@pytest.mark.policy("P11")
def test_details_carry_error_codes_never_free_text() -> None:
    body = {"error": "RecordInvalid", "description": "ada@example.com is invalid"}
    assert classify(422, "users.delete", body=body).detail == "users.delete: HTTP 422 RecordInvalid"
    echo = {"message": "Contact ada@example.com not found", "category": "ada@example.com"}
    assert "ada" not in classify(400, "x", body=echo).detail
    assert (
        classify(400, "x", body={"errors": [{"code": "parameter_invalid"}]}).detail == "x: HTTP 400 parameter_invalid"
    )


@pytest.mark.policy("P11")
def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert classify(429, "x", retry_after="30").retry_after == 30.0
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("-3") == 0.0
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(date, now=now.timestamp()) == 90.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert classify(429, "x").retry_after is None
