"""terraform/ for telemetry (P4, P12, P23): both functions, the topic's retries and dead letters, the
90-day archive, no load-balancer logging of analytics, a Cloud Armor rate limit on the ingest route."""

from __future__ import annotations

import pytest

from tests.infra.test_terraform import armor_rate_rules, cel_path_matches, config, declared_functions, first

pytestmark = pytest.mark.policy("P12", "P23")


def test_both_functions_are_declared() -> None:
    functions = declared_functions()
    ingest, aggregator = functions["telemetry"], functions["telemetry-aggregator"]
    assert ingest["trigger"] == "http" and ingest["public"] is True
    assert ingest["lb_logging"] is False, "client IPs of analytics requests are never logged (P23)"
    assert ingest["publishes"] == ["telemetry-events"]
    assert aggregator["trigger"] == "pubsub" and aggregator["topic"] == "telemetry-events"
    assert aggregator["public"] is False and not aggregator["secrets"]
    assert isinstance(aggregator["dead_letter_after"], int) and 5 <= aggregator["dead_letter_after"] <= 100
    env = config().locals["telemetry_env"]
    assert env["TELEMETRY_ARCHIVE_BUCKET"] == "${google_storage_bucket.telemetry_archive.name}"
    assert ingest["env"] == aggregator["env"] == "${local.telemetry_env}"


def test_the_topic_is_delivered_with_retries_and_a_dead_letter_topic() -> None:
    cfg = config()
    assert cfg.locals["dead_letter_functions"] == (
        "${{for name, f in local.event_functions : name => f if f.dead_letter_after != null}}"
    )
    assert '"${f.topic}-dead-letter"' in cfg.locals["topics"], "the dead-letter topics are declared"
    push = cfg.resource("google_pubsub_subscription", "push")
    assert push["for_each"] == "${local.dead_letter_functions}"
    assert push["topic"] == "${google_pubsub_topic.app[each.value.topic].id}"
    config_ = first(push["push_config"])
    assert config_["push_endpoint"] == "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}"
    oidc = first(config_["oidc_token"])
    assert oidc["service_account_email"] == "${google_service_account.pubsub_invoker.email}"
    retry = first(push["retry_policy"])
    assert retry["minimum_backoff"] and retry["maximum_backoff"]
    dead = first(push["dead_letter_policy"])
    assert dead["dead_letter_topic"] == '${google_pubsub_topic.app["${each.value.topic}-dead-letter"].id}'
    assert dead["max_delivery_attempts"] == "${each.value.dead_letter_after}"
    kept = cfg.resource("google_pubsub_subscription", "dead_letter")
    assert kept["message_retention_duration"] == "604800s"
    agent = "serviceAccount:${google_project_service_identity.pubsub.email}"
    assert cfg.resource("google_pubsub_topic_iam_member", "dead_letter_publisher")["member"] == agent
    assert cfg.resource("google_pubsub_subscription_iam_member", "dead_letter_subscriber")["member"] == agent


def test_the_archive_keeps_raw_product_events_90_days_and_nothing_deleted_survives() -> None:
    bucket = config().resource("google_storage_bucket", "telemetry_archive")
    (rule,) = bucket["lifecycle_rule"]
    assert first(rule["condition"])["age"] == 90 and first(rule["action"])["type"] == "Delete"
    assert first(bucket["versioning"])["enabled"] is False
    assert first(bucket["soft_delete_policy"])["retention_duration_seconds"] == 0
    assert bucket["public_access_prevention"] == "enforced" and bucket["location"] == "${var.region}"
    creator = config().resource("google_storage_bucket_iam_member", "aggregator_telemetry_archive")
    assert creator["role"] == "roles/storage.objectCreator", "the aggregator can neither read nor delete"
    assert (
        config().locals["privacy_env"]["TELEMETRY_ARCHIVE_BUCKET"] == "${google_storage_bucket.telemetry_archive.name}"
    )


def test_cloud_armor_rate_limits_the_ingest_route() -> None:
    rules = [expr for _, expr in armor_rate_rules() if cel_path_matches(expr, "/telemetry/events")]
    assert rules, "no Cloud Armor rate rule covers /telemetry/events"
    assert not any(cel_path_matches(expr, "/telemetryx") for expr in rules)
    limits = config().locals["armor_rate_limits"]["telemetry"]
    assert str(limits["count"]).startswith("${var.")


def test_counter_cells_are_not_indexed() -> None:
    field = config().resource("google_firestore_field", "telemetry_counters_cells")
    assert field["collection"] == "telemetry_counters" and field["field"] == "cells"
    assert "index_config" in field
