"""Each emulator of the session stack answers the Google client libraries the app uses."""

from __future__ import annotations

import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from devstack.http import request

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")


def test_firestore_round_trip_and_wipe(stack) -> None:
    # A project of its own: wiping the session's project would erase what other tests left to scan.
    project = f"demo-wipe-{uuid.uuid4().hex[:8]}"
    db = firestore.Client(project=project)
    ref = db.collection("devstack_test").document(uuid.uuid4().hex)
    ref.set({"n": 1})
    assert ref.get().to_dict() == {"n": 1}

    stack.wipe_firestore(project)

    assert not ref.get().exists


def test_storage_round_trip_with_google_cloud_storage(stack) -> None:
    client = storage.Client(project=stack.project, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"devstack-test-{uuid.uuid4().hex[:8]}")
    bucket.blob("a/b.txt").upload_from_string(b"hello", content_type="text/plain")

    assert client.bucket(bucket.name).blob("a/b.txt").download_as_bytes() == b"hello"
    assert [b.name for b in client.list_blobs(bucket.name)] == ["a/b.txt"]
    bucket.delete(force=True)  # leave nothing the data-map check would have to explain


def test_pubsub_topic_and_publish(stack) -> None:
    topic = f"devstack-test-{uuid.uuid4().hex[:8]}"
    from devstack import pubsub

    pubsub.create_topic(stack.pubsub_host, stack.project, topic)
    pubsub.create_topic(stack.pubsub_host, stack.project, topic)  # idempotent
    assert stack.publish(topic, b"x")


def test_auth_emulator_signs_up_a_user(stack) -> None:
    host = stack.env["FIREBASE_AUTH_EMULATOR_HOST"]
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    response = request(
        "POST",
        f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=fake",
        body={"email": email, "password": "not-a-real-secret-1", "returnSecureToken": True},
    )
    assert response.status == 200, response.text
    assert response.json()["email"] == email
