"""Data subject requests through the gateway, as users and staff would make them (P10, P11, P20, P26, P28).

The requests run in the gateway's own privacy-worker, pushed by the Pub/Sub emulator; the stores
are read back from the emulators directly. Staff sign in with Google (the Auth emulator), like users.
Processors this stack does not run may leave a request `needs_attention`: the tests then check
that nothing but those processor steps failed, and that every store was erased all the same.
"""

from __future__ import annotations

import html
import io
import json
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.mail import message_text
from shared import datamap
from shared.audit import AUDIT_LOG, AuditLog
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS
from shared.identity.tokens import email_key
from tests.e2e.test_auth_google import google_id_token
from tests.support import (
    Client,
    Mailbox,
    confirm_signup,
    link_token,
    new_email,
    new_password,
    poll,
    run_cli,
    signin,
    signup,
    signup_and_verify,
    staff_session,
)

pytestmark = pytest.mark.policy("P11")


DONE = ("completed", "needs_attention")


def _db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


def _storage(stack: Any) -> storage.Client:
    return storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())


def _account_id(stack: Any, email: str) -> str:
    return _db(stack).collection(ACCOUNT_EMAILS).document(email_key(email)).get().to_dict()["account_id"]


def _user(client: Client, mailbox: Mailbox) -> tuple[Client, str, str]:
    email, password = signup_and_verify(client, mailbox)
    return signin(client, email, password), email, password


def _failed_steps(view: dict[str, Any]) -> list[str]:
    return [s["name"] for s in view["steps"] if s["status"] not in ("done", "not_found", "skipped")]


def _upload_business_files(stack: Any, account_id: str) -> list[str]:
    bucket = _storage(stack).bucket(stack.env["BUSINESS_DATA_BUCKET"])
    names = [f"accounts/{account_id}/plans/site-a.dwg", f"accounts/{account_id}/readme.txt"]
    for name in names:
        bucket.blob(name).upload_from_string(f"content of {name}".encode())
    return names


@pytest.mark.policy("P26", "P20")
def test_export_round_trip_only_its_holder_can_see_or_download(client: Client, mailbox: Mailbox, stack: Any) -> None:
    user, email, _ = _user(client, mailbox)
    account_id = _account_id(stack, email)
    files = _upload_business_files(stack, account_id)

    response = user.post("/privacy/requests", json={"type": "export"})
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert set(receipt) >= {"request_id", "status", "due_at"} and receipt["status"] == "queued"
    request_id = receipt["request_id"]
    view = poll(lambda: user.get(f"/privacy/requests/{request_id}").json(), lambda v: v["status"] in DONE)
    assert all(name.startswith("processor:") for name in _failed_steps(view)), view["steps"]
    assert view["export"]["ready"]
    assert any(r["request_id"] == request_id for r in user.get("/privacy/requests").json()["requests"])
    assert f"/privacy/requests/{request_id}/download" in message_text(mailbox.last(email, "export is ready"))

    download = user.get(f"/privacy/requests/{request_id}/download")
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    names = set(archive.namelist())
    categories = {p.category for p in (*datamap.FIRESTORE, *datamap.SYSTEM) if p.export}
    assert {f"{c}.json" for c in categories} <= names, names
    assert {f"processors/{p.name}.json" for p in datamap.PROCESSORS} <= names
    for name in names:
        if name.endswith(".json"):
            json.loads(archive.read(name))
    profile = json.loads(archive.read("profile.json"))["places"][0]["records"][0]
    assert profile["email"] == email and not any("hash" in key for key in profile)
    for name in files:
        assert archive.read("business_files/" + name.split("/", 2)[2]) == f"content of {name}".encode()

    # A second user can neither see nor download it (P20): the request does not exist for them.
    other, _, _ = _user(client.clone(), mailbox)
    for path in (f"/privacy/requests/{request_id}", f"/privacy/requests/{request_id}/download"):
        refused = other.get(path)
        assert refused.status_code == 404, path
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert request_id not in {r["request_id"] for r in other.get("/privacy/requests").json()["requests"]}
    assert other.post(f"/privacy/requests/{request_id}/cancel").status_code == 404
    # Nor anyone signed out.
    assert client.get(f"/privacy/requests/{request_id}/download").status_code == 401


@pytest.mark.policy("P11", "P25")
def test_erasure_needs_reauthentication(client: Client, mailbox: Mailbox, stack: Any) -> None:
    user, _, password = _user(client, mailbox)
    refused = user.post("/privacy/requests", json={"type": "erasure"})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/reauthentication-required")
    assert "current_password" in refused.json()["methods"]
    wrong = user.post("/privacy/requests", json={"type": "erasure", "current_password": "not it at all"})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("/invalid-current-password")
    # A password account cannot prove itself with a Google token it has no Google identity for.
    google = user.post("/privacy/requests", json={"type": "erasure", "google_id_token": "x" * 40})
    assert google.status_code == 403 and google.json()["type"].endswith("/reauthentication-required")

    response = user.post("/privacy/requests", json={"type": "erasure", "current_password": password})
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["status"] == "scheduled" and receipt["cancellable_until"] < receipt["due_at"]
    assert user.post(f"/privacy/requests/{receipt['request_id']}/cancel").json()["status"] == "cancelled"


@pytest.mark.policy("P11", "P25", "P2")
def test_a_google_account_asks_for_erasure_with_a_fresh_google_sign_in(client: Client, stack: Any) -> None:
    email = new_email("erase-google")
    subject = secrets.token_hex(8)
    first = google_id_token(stack, subject, email, name="Gina Gone")["idToken"]
    signed_in = client.post("/auth/google", json={"id_token": first})
    assert signed_in.status_code == 200, signed_in.text
    user = client.clone(token=signed_in.json()["session_token"])
    refused = user.post("/privacy/requests", json={"type": "erasure"})
    assert refused.status_code == 403 and refused.json()["methods"] == ["google_id_token"]

    fresh = google_id_token(stack, subject, email, name="Gina Gone")["idToken"]
    response = user.post("/privacy/requests", json={"type": "erasure", "google_id_token": fresh})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "scheduled"
    assert user.post(f"/privacy/requests/{response.json()['request_id']}/cancel").json()["status"] == "cancelled"


@pytest.mark.policy("P11", "P1")
def test_the_mailed_cancel_link_opens_a_page_whose_button_cancels(client: Client, mailbox: Mailbox, stack: Any) -> None:
    user, email, password = _user(client, mailbox)
    response = user.post("/privacy/requests", json={"type": "erasure", "current_password": password})
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]

    text = message_text(mailbox.last(email, "will be deleted"))
    found = re.search(r"https?://[^/\s]+(/privacy/cancel)#(\S+)", text)
    assert found, "no cancel link in the confirmation mail"
    # The request and the token ride in the fragment, which a browser never sends: no query string
    # (and so no access log) ever holds the token.
    assert "?token=" not in text and "/privacy/cancel?" not in text
    fragment = dict(parse_qsl(found.group(2)))
    assert fragment.keys() == {"request", "token"} and fragment["request"] == request_id
    token, path = fragment["token"], found.group(1)

    def status() -> str:
        return str(user.get(f"/privacy/requests/{request_id}").json()["status"])

    # What a browser, a mail scanner or a link preview fetches changes nothing: GET and HEAD show the page,
    # even with the fragment's contents pasted into a query string, which is never read.
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "form-action 'none'" in page.headers["Content-Security-Policy"]
    confs = [json.loads(html.unescape(c)) for c in re.findall(r'data-conf="([^"]*)"', page.text)]
    button = next(c for c in confs if c["action"] == "/privacy/cancel")
    assert button["needsToken"] and ["request"] in button.values(), "the request id comes from the fragment too"
    assert token not in page.text
    assert client.request("HEAD", path).status_code == 200
    assert client.get(f"{path}?{found.group(2)}").status_code == 200
    assert client.post(f"{path}?{found.group(2)}").status_code in (400, 415)
    assert status() == "scheduled"

    # The page's button: a JSON POST of the fragment's parameters.
    forged = client.post(path, json={"request": request_id, "token": "x" + token})
    assert forged.status_code == 400 and forged.json()["type"].endswith("/invalid-token")
    assert status() == "scheduled"
    cancelled = client.post(path, json=fragment)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"request_id": request_id, "status": "cancelled"}
    assert status() == "cancelled"
    assert client.post(path, json=fragment).status_code == 400, "the token worked once"
    assert user.get("/auth/me").status_code == 200
    log = Path(stack.gateway_log).read_text(encoding="utf-8", errors="replace")
    assert token not in log, "the cancel token reached a log line"


@pytest.mark.policy("P28", "P10")
def test_dpo_erasure_through_the_admin_api_erases_everything_and_is_audited(
    client: Client, mailbox: Mailbox, stack: Any
) -> None:
    db = _db(stack)
    user, email, password = _user(client, mailbox)
    account_id = _account_id(stack, email)
    _upload_business_files(stack, account_id)
    user.post("/privacy/requests", json={"type": "export"})  # an export on the way is erased too
    # The first admin is made with the CLI (P28); that too is in the audit log.
    admin, admin_id = staff_session(client.clone(), stack)
    made = run_cli("grant-role", "--account-id", admin_id, "--role", "admin", "--reason", "first admin")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["roles"] == ["admin"]
    dpo, dpo_id = staff_session(client.clone(), stack)

    # A signed-in non-staff user is refused, and the refusal is in the audit log.
    refused = user.post("/admin/privacy/erasures", json={"account_id": account_id, "reason": "let me in"})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/role-required")
    assert dpo.get("/admin/privacy/requests").status_code == 403
    assert client.get("/admin/privacy/requests").status_code == 401

    # The admin makes the DPO (the role change is audited and visible to the account concerned).
    granted = admin.request("PUT", f"/admin/staff/{dpo_id}/roles", json={"roles": ["dpo"], "reason": "new DPO"})
    assert granted.status_code == 200 and granted.json()["roles"] == ["dpo"]
    escalate = dpo.request("PUT", f"/admin/staff/{dpo_id}/roles", json={"roles": ["admin"], "reason": "promote me"})
    assert escalate.status_code == 403
    access = dpo.get("/privacy/access-log").json()["entries"]
    assert any(e["action"] == "PUT /admin/staff/{account_id}/roles" and e["reason"] == "new DPO" for e in access)

    body = {"account_id": account_id, "reason": "Request by post, ref 77"}
    started = dpo.post("/admin/privacy/erasures", json=body)
    assert started.status_code == 202, started.text
    request_id = started.json()["request_id"]
    listing = dpo.get("/admin/privacy/requests").json()["requests"]
    dues = [r["due_at"] for r in listing]
    assert dues == sorted(dues)

    def record() -> dict[str, Any] | None:
        records = dpo.get("/admin/privacy/deletion-records").json()["records"]
        return next((r for r in records if r["request_id"] == request_id), None)

    proof = poll(record, lambda r: r is not None)
    assert all(name.startswith("processor:") or name == "notify" for name in _failed_steps(proof)), proof["steps"]
    assert proof["account_id"] == account_id and proof["requested_by"] == "dpo"
    for personal in (email, "Lovelace", user.ip, "ref 77"):
        assert personal not in json.dumps(proof), f"the deletion record holds {personal!r}"

    # Every place is empty, read straight from the emulators; the session is dead; the address is free.
    # The export asked for above may still be finishing a step when the record appears: whatever that step
    # writes, it deletes again once it sees the erasure, so the places are polled until that run is over.
    assert not db.collection(ACCOUNTS).document(account_id).get().exists
    gcs = _storage(stack)

    def leftovers() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for place in datamap.FIRESTORE:
            if place.erasure in ("expire", "keep") or place.account_field is None or place.group:
                continue
            query = db.collection(place.collection).where(filter=FieldFilter(place.account_field, "==", account_id))
            found[place.collection] = [d.id for d in query.limit(5).stream() if d.id != request_id]
        for place in datamap.STORAGE:
            bucket = stack.env.get(place.bucket_setting)
            if bucket:
                prefix = place.prefix.format(account_id=account_id)
                found[bucket] = [b.name for b in gcs.list_blobs(bucket, prefix=prefix)]
                # A soft-deleted object is no erasure.
                found[f"{bucket} (soft-deleted)"] = [
                    b.name for b in gcs.list_blobs(bucket, prefix=prefix, soft_deleted=True)
                ]
        return {where: names for where, names in found.items() if names}

    poll(leftovers, lambda left: not left, timeout=30)
    assert user.get("/auth/me").status_code == 401
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401
    # The address registers again as a new account (wait for the new confirmation mail: the first one,
    # already used, is still in the mailbox).
    again, new_pass = client.clone(), new_password()
    before = mailbox.count(email, "confirm your email")
    signup(again, email, new_pass)
    poll(lambda: mailbox.count(email, "confirm your email"), lambda n: n > before, timeout=20)
    confirmed = confirm_signup(again, link_token(mailbox.last(email, "confirm your email")), new_pass)
    assert confirmed.status_code == 200, confirmed.text
    assert _account_id(stack, email) != account_id

    # Every admin call of this test is in the audit log, refused ones too, and the chain is intact.
    actors = FieldFilter("actor_id", "in", [account_id, admin_id, dpo_id])
    entries = [d.to_dict() for d in db.collection(AUDIT_LOG).where(filter=actors).stream()]
    calls = {(e["actor_id"], e["action"], e["details"].get("outcome")) for e in entries}
    assert (account_id, "POST /admin/privacy/erasures", "refused") in calls
    assert (dpo_id, "GET /admin/privacy/requests", "refused") in calls
    assert (admin_id, "PUT /admin/staff/{account_id}/roles", "allowed") in calls
    assert (dpo_id, "PUT /admin/staff/{account_id}/roles", "refused") in calls
    assert (dpo_id, "POST /admin/privacy/erasures", "allowed") in calls
    assert (dpo_id, "GET /admin/privacy/deletion-records", "allowed") in calls
    erasure = next(e for e in entries if e["action"] == "POST /admin/privacy/erasures" and e["actor_id"] == dpo_id)
    assert erasure["target_account_id"] == account_id and erasure["reason"] == "Request by post, ref 77"
    assert erasure["actor_roles"] == ["dpo"]
    cli_entry = next(
        e for e in db.collection(AUDIT_LOG).where(filter=FieldFilter("target_account_id", "==", admin_id)).stream()
    )
    assert cli_entry.to_dict()["action"] == "cli grant-role" and cli_entry.to_dict()["actor_id"].startswith("cli:")
    assert AuditLog(db).verify() == []


@pytest.mark.policy("P28")
def test_the_cli_erases_an_account_at_the_dpos_request(client: Client, mailbox: Mailbox, stack: Any) -> None:
    user, email, _ = _user(client, mailbox)
    account_id = _account_id(stack, email)
    assert run_cli("erase", "--email", "nobody." + email, "--reason", "test").returncode == 1
    started = run_cli("erase", "--email", email, "--reason", "Letter to the DPO")
    assert started.returncode == 0, started.stderr
    request_id = json.loads(started.stdout)["request_id"]
    poll(lambda: _db(stack).collection("deletion_records").document(request_id).get().exists, bool)
    assert not _db(stack).collection(ACCOUNTS).document(account_id).get().exists
    assert user.get("/auth/me").status_code == 401


@pytest.mark.policy("P28")
def test_the_dpo_reads_the_record_of_processing(client: Client, stack: Any) -> None:
    dpo, _ = staff_session(client, stack, "dpo")
    response = dpo.get("/admin/privacy/records")
    assert response.status_code == 200, response.text
    text = json.dumps(response.json())
    for processor in datamap.PROCESSORS:
        assert processor.name in text


def test_the_admin_api_refuses_unknown_roles_and_bodies(client: Client, stack: Any) -> None:
    admin, _ = staff_session(client, stack, "admin")
    target = admin.request("PUT", "/admin/staff/acc_nobody/roles", json={"roles": ["root"], "reason": "test"})
    assert target.status_code == 422
    missing = admin.request("PUT", "/admin/staff/acc_nobody/roles", json={"roles": ["dpo"], "reason": "test"})
    assert missing.status_code == 404
    assert admin.post("/admin/privacy/erasures", json={"account_id": "acc_nobody", "reason": "test"}).status_code == 404
    assert requests.get(f"{stack.gateway_url}/admin/health", timeout=10).status_code == 200


# -- objection (GDPR Art. 21) ------------------------------------------------------------------------------------


@pytest.mark.policy("P26")
def test_an_objection_is_answered_at_once_listed_and_exported(client: Client, mailbox: Mailbox, stack: Any) -> None:
    user, email, _ = _user(client, mailbox)
    account_id = _account_id(stack, email)
    assert user.get("/privacy/requests").json()["objection"] is None

    response = user.post("/privacy/requests", json={"type": "objection", "reason": "No newsletters, please"})
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["type"] == "objection" and receipt["status"] == "completed"
    request_id = receipt["request_id"]
    # Answered: the holder is mailed, and the account says what stopped (the mail and telemetry layers read it).
    assert request_id in message_text(mailbox.last(email, "objection has been recorded"))
    stored = _db(stack).collection(ACCOUNTS).document(account_id).get().to_dict()["objection"]
    assert stored["marketing"] is True and stored["analytics"] is True and stored["at"] is not None

    listed = user.get("/privacy/requests").json()
    assert listed["objection"]["marketing"] is True and listed["objection"]["analytics"] is True
    view = next(r for r in listed["requests"] if r["request_id"] == request_id)
    assert view["status"] == "completed" and view["steps"] == [] and view["completed_at"]
    assert view["objection"] == listed["objection"]
    assert user.get(f"/privacy/requests/{request_id}").json() == view
    # Nothing to cancel; asking again is recorded and answered again.
    assert user.post(f"/privacy/requests/{request_id}/cancel").status_code == 409
    again = user.post("/privacy/requests", json={"type": "objection"})
    assert again.status_code == 202 and again.json()["request_id"] != request_id
    # Another account sees neither the request nor an objection (P20).
    other, _, _ = _user(client.clone(), mailbox)
    assert other.get(f"/privacy/requests/{request_id}").status_code == 404
    assert other.get("/privacy/requests").json() == {"requests": [], "objection": None}

    # The export holds it with the other requests.
    export_id = user.post("/privacy/requests", json={"type": "export"}).json()["request_id"]
    poll(lambda: user.get(f"/privacy/requests/{export_id}").json(), lambda v: v["status"] in DONE)
    archive = zipfile.ZipFile(io.BytesIO(user.get(f"/privacy/requests/{export_id}/download").content))
    records = [r for p in json.loads(archive.read("privacy_requests.json"))["places"] for r in p["records"]]
    exported = {r["id"]: r for r in records}
    assert exported[request_id]["type"] == "objection" and exported[request_id]["status"] == "completed"


@pytest.mark.policy("P26")
def test_an_objection_needs_no_step_up_and_its_body_is_checked(client: Client, mailbox: Mailbox) -> None:
    user, _, _ = _user(client, mailbox)
    for body in (
        {"type": "objection", "reason": 5},
        {"type": "objection", "reason": "x" * 2001},
        {"type": "objection", "marketing": False},
        {"type": "retention"},  # only the retention sweep starts one
    ):
        refused = user.post("/privacy/requests", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert user.post("/privacy/requests", json={"type": "export", "reason": "why not"}).status_code == 422
    assert client.post("/privacy/requests", json={"type": "objection"}).status_code == 401
    assert user.post("/privacy/requests", json={"type": "objection"}).status_code == 202
