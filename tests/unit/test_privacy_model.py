"""The pure part of data subject requests: step plans and state transitions, without an emulator (P11, P26, P27)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import datamap
from shared.privacy import model
from shared.privacy.model import (
    COMPLETED,
    DONE,
    FAILED,
    NEEDS_ATTENTION,
    QUEUED,
    RETRY,
    RUNNING,
    SCHEDULED,
    PrivacyRequest,
    backoff_seconds,
    step_plan,
)
from shared.privacy.steps import HANDLERS

pytestmark = pytest.mark.policy("P11")

NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
PROCESSORS = [p.name for p in datamap.PROCESSORS]


def _request(kind: str = "erasure", status: str = QUEUED, **kw: object) -> PrivacyRequest:
    steps = step_plan(kind, PROCESSORS)
    return PrivacyRequest(
        id="prq_1",
        account_id="acc_1",
        type=kind,
        status=status,
        received_at=NOW,
        due_at=model.due_date(NOW),
        step_order=[s.name for s in steps],
        steps={s.name: s for s in steps},
        **kw,  # type: ignore[arg-type]
    )


def test_an_erasure_and_a_retention_erasure_run_the_same_plan() -> None:
    erasure = [s.name for s in step_plan("erasure", PROCESSORS)]
    assert [s.name for s in step_plan("retention", PROCESSORS)] == erasure
    assert erasure[0] == "sessions" and erasure[-2:] == ["account", "notify"]
    assert {f"processor:{name}" for name in PROCESSORS} <= set(erasure)
    assert {f"storage:{p.bucket_setting}" for p in datamap.STORAGE} <= set(erasure)
    assert not {"firestore:sessions", "firestore:accounts", "firestore:account_emails"} & set(erasure)


@pytest.mark.policy("P26")
def test_an_export_plan_ends_with_the_archive_and_an_objection_has_no_step() -> None:
    assert [s.name for s in step_plan("export", ["A", "B"])] == ["processor:A", "processor:B", "archive", "notify"]
    assert step_plan("objection", PROCESSORS) == []


@pytest.mark.policy("P26", "P27")
def test_every_step_of_every_plan_has_a_handler() -> None:
    for kind in ("erasure", "retention", "export"):
        for step in step_plan(kind, PROCESSORS):
            assert (model.plan_family(kind), model.step_kind(step.name)[0]) in HANDLERS, (kind, step.name)


def test_claim_starts_a_due_request_and_another_owner_is_fenced_out() -> None:
    request = _request(status=SCHEDULED, run_after=NOW + timedelta(hours=1), cancel_token_hash="h")
    changes = request.claim("w1", NOW, timedelta(minutes=5))
    assert request.status == SCHEDULED and "status" not in changes  # still in its grace period
    assert request.cancellable(NOW)
    later = NOW + timedelta(hours=1)
    changes = request.claim("w1", later, timedelta(minutes=5))
    assert changes["status"] == RUNNING and changes["started_at"] == later and changes["cancel_token_hash"] is None
    assert not request.cancellable(later)
    assert request.leased_by_other("w2", later) and not request.leased_by_other("w1", later)
    assert not request.leased_by_other("w2", later + timedelta(minutes=6))
    assert request.release(run_after=later)["lease_owner"] is None and not request.leased_by_other("w2", later)


def test_sessions_go_first_and_the_steps_after_them_wait() -> None:
    request = _request()
    step = request.next_step(NOW)
    assert step is not None and step.name == "sessions"
    request.start_step("sessions", NOW, NOW + timedelta(minutes=5))
    # A step left running (its worker died) is the one to run again; nothing after it starts before.
    assert request.steps["sessions"].attempts == 1 and request.next_step(NOW) is step
    changes, gave_up = request.record_outcome("sessions", DONE, "ok", NOW, max_attempts=3, retry_in=1)
    assert not gave_up and changes["steps"]["sessions"]["status"] == DONE
    following = request.next_step(NOW)
    assert following is not None and following.name.startswith("processor:")


def test_a_failing_step_is_retried_with_backoff_then_fails_for_good() -> None:
    request = _request("export")
    name = request.step_order[0]
    for attempt in (1, 2):
        request.start_step(name, NOW, NOW)
        _, gave_up = request.record_outcome(name, RETRY, "429", NOW, max_attempts=3, retry_in=8)
        assert not gave_up and request.steps[name].status == RETRY and request.steps[name].attempts == attempt
        assert request.next_retry_at() == NOW + timedelta(seconds=8)
        assert request.next_step(NOW).name != name  # type: ignore[union-attr]
    request.start_step(name, NOW, NOW)
    _, gave_up = request.record_outcome(name, RETRY, "429", NOW, max_attempts=3, retry_in=8)
    assert gave_up and request.steps[name].status == FAILED and request.steps[name].last_error == "429"
    assert backoff_seconds(1, None, 30, 3600) == 30 and backoff_seconds(4, None, 30, 3600) == 240
    assert backoff_seconds(20, None, 30, 3600) == 3600 and backoff_seconds(3, 7.5, 30, 3600) == 7.5


def test_the_archive_is_built_despite_a_failed_processor_and_the_request_needs_attention() -> None:
    request = _request("export")
    for name in request.step_order[:-2]:
        request.start_step(name, NOW, NOW)
        request.record_outcome(name, FAILED if name.endswith("Zendesk") else DONE, "x", NOW, max_attempts=1, retry_in=0)
    step = request.next_step(NOW)
    assert step is not None and step.name == "archive"
    request.record_outcome("archive", DONE, "ok", NOW, max_attempts=1, retry_in=0)
    request.record_outcome("notify", DONE, "ok", NOW, max_attempts=1, retry_in=0)
    assert request.all_steps_terminal and request.failed_steps() == ["processor:Zendesk"]
    assert request.finish(NOW)["status"] == NEEDS_ATTENTION
    request.retry_failed(NOW)
    assert request.status == QUEUED and request.steps["processor:Zendesk"].status == "pending"
    assert request.steps["processor:Zendesk"].attempts == 0 and request.steps["archive"].status == DONE


@pytest.mark.policy("P27")
def test_the_deletion_record_says_the_type_and_holds_no_reason() -> None:
    request = _request("retention", reason="retention period over", requested_by="retention-sweep")
    for name in request.step_order:
        request.record_outcome(name, DONE, "done", NOW, max_attempts=1, retry_in=0)
    record = request.deletion_record(NOW)
    assert record["type"] == "retention" and record["requested_by"] == "retention-sweep"
    assert record["status"] == "complete" and len(record["steps"]) == len(request.step_order)
    assert "retention period over" not in repr(record)
    assert request.finish(NOW)["status"] == COMPLETED


@pytest.mark.policy("P28")
def test_the_dpo_starts_a_scheduled_erasure_at_once() -> None:
    request = _request(status=SCHEDULED, run_after=NOW + timedelta(hours=24), cancel_token_hash="h")
    changes = request.start_now_for_dpo("acc_dpo", "letter", NOW)
    assert changes["status"] == QUEUED and changes["run_after"] is None and changes["cancel_token_hash"] is None
    assert request.requested_by == "dpo" and not request.cancellable(NOW)


@pytest.mark.policy("P26")
def test_an_objection_shows_what_it_stopped() -> None:
    request = _request("objection", status=COMPLETED, objection={"marketing": True, "analytics": True, "at": NOW})
    body = request.public()
    assert body["steps"] == [] and body["objection"] == {"marketing": True, "analytics": True, "at": NOW.isoformat()}
    assert "objection" not in _request("export").public()
