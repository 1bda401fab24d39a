"""terraform/ for data subject requests (P4, P11, P26): buckets that really delete, who may delete,
dead letters of the privacy jobs and the scheduled deadline check."""

from __future__ import annotations

import re

import pytest

from tests.infra.test_terraform import config, declared_functions, first

pytestmark = pytest.mark.policy("P11", "P4")


def _bucket(name: str) -> dict:
    return config().resource("google_storage_bucket", name)


@pytest.mark.policy("P26")
def test_exports_are_deleted_after_7_days_and_no_bucket_keeps_deleted_objects() -> None:
    exports = _bucket("exports")
    ages = [first(rule["condition"])["age"] for rule in exports["lifecycle_rule"]]
    assert ages and max(ages) <= 7
    assert all(first(rule["action"])["type"] == "Delete" for rule in exports["lifecycle_rule"])
    for name in ("exports", "business_data"):
        bucket = _bucket(name)
        assert first(bucket["versioning"])["enabled"] is False, f"{name}: versions would survive an erasure"
        assert first(bucket["soft_delete_policy"])["retention_duration_seconds"] == 0, f"{name}: soft delete"
        assert bucket["public_access_prevention"] == "enforced" and bucket["uniform_bucket_level_access"] is True
        assert bucket["location"] == "${var.region}"


def test_only_the_worker_and_the_retention_sweep_may_delete_objects() -> None:
    """The worker erases (P11); the sweep deletes what is past its period (P27), never business data."""
    members = config().of_type("google_storage_bucket_iam_member")
    cannot_delete = {"roles/storage.objectViewer", "roles/storage.objectCreator"}
    deleting = {(m["bucket"], m["member"]) for m in members.values() if m["role"] not in cannot_delete}
    worker = 'serviceAccount:${google_service_account.fn["privacy-worker"].email}'
    sweep = 'serviceAccount:${google_service_account.fn["retention-sweep"].email}'
    assert deleting == {
        ("${google_storage_bucket.business_data.name}", worker),
        ("${google_storage_bucket.exports.name}", worker),
        ("${google_storage_bucket.telemetry_archive.name}", worker),
        ("${google_storage_bucket.exports.name}", sweep),
        ("${google_storage_bucket.telemetry_archive.name}", sweep),
    }
    for name, f in declared_functions().items():
        assert not any(role.startswith("roles/storage.") for role in f["roles"]), f"{name}: project-wide storage role"


def test_privacy_functions_are_declared_with_the_buckets_and_topics() -> None:
    functions = declared_functions()
    worker = functions["privacy-worker"]
    assert worker["trigger"] == "pubsub" and worker["topic"] == "privacy-jobs" and worker["public"] is False
    assert worker["dead_letter_after"] and worker["dead_letter_after"] >= 5, "a dead worker's lease outlives a few"
    assert "roles/firebaseauth.admin" in worker["roles"]
    for name in ("privacy", "admin"):
        assert functions[name]["public"] is True and "privacy-jobs" in functions[name]["publishes"]
    env = config().locals["privacy_env"]
    assert env["BUSINESS_DATA_BUCKET"] == "${google_storage_bucket.business_data.name}"
    assert env["EXPORTS_BUCKET"] == "${google_storage_bucket.exports.name}"
    assert env["EXPORT_SIGNED_URLS"] == "true"


def test_dead_letters_are_kept_and_the_deadline_check_is_scheduled() -> None:
    cfg = config()
    push = cfg.resource("google_pubsub_subscription", "push")
    assert push["for_each"] == "${local.dead_letter_functions}"
    assert "dead_letter_policy" in push and "retry_policy" in push
    kept = cfg.resource("google_pubsub_subscription", "dead_letter")
    assert kept["for_each"] == "${local.dead_letter_functions}" and kept["message_retention_duration"] == "604800s"
    job = cfg.resource("google_cloud_scheduler_job", "privacy_check")
    target = first(job["pubsub_target"])
    assert target["topic_name"] == '${google_pubsub_topic.app["privacy-jobs"].id}'
    assert "tick" in target["data"]
    assert re.fullmatch(r"\*/\d+ \* \* \* \*", cfg.variables["privacy_check_schedule"]["default"])
