"""Fuzzing every operation of the published contract (`/openapi.json`) against the local stack (P5, P22).

Schemathesis generates requests from the merged OpenAPI document the gateway serves, valid ones and
invalid ones (wrong types, missing fields, unknown fields, odd strings), and sends them through the
gateway like any client. What must hold for every answer:

- never a 5xx: bad input is the client's problem, answered 4xx;
- every 4xx is `application/problem+json` whose `type` is a page under `/problems/`, so clients can
  branch on it (429 from the throttle counts: it is a 4xx problem like the others);
- every 2xx conforms to the operation's declared answer schema (schemathesis' `response_schema_conformance`).

Fuzzing reaches few 2xx answers of the operations that need state (an account, a request, a staff role), so
`test_the_answers_of_a_journey_conform_to_the_contract` walks through them as a user and staff would, and
checks each success answer against the schema the served `/openapi.json` declares for it.

Nothing is excluded. The Stripe webhook gets garbage bodies without a valid signature: it must answer
400 problem+json. Operations that need a session are fuzzed twice, without one (401) and with a fresh
account's session, each from a client IP of its own so the per-IP throttle couples nothing. Staff
operations answer 403 to that account (it has no role): what is behind the role is covered by the admin
tests. Bounded: MAX_EXAMPLES requests per operation and mode, no example database, no shrinking.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance

from functions.api_docs.routes import merged_document
from tests.e2e.telemetry_support import staff
from tests.support import Client, Mailbox, link_token, new_email, new_ip, new_password, signin, signup_and_verify

pytestmark = pytest.mark.policy("P5", "P22")

MAX_EXAMPLES = 12

# Collected from the document built in this process; each test then fuzzes the document the gateway serves.
OPERATIONS = sorted((path, method.upper()) for path, ops in merged_document()["paths"].items() for method in ops)


def _secured(operation: dict[str, Any]) -> bool:
    return any("bearerAuth" in requirement for requirement in operation.get("security", []))


@pytest.fixture(scope="module")
def contract(gateway_url: str) -> Any:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json", timeout=30)
    return schema


@pytest.fixture(scope="module")
def raw_contract(gateway_url: str) -> dict[str, Any]:
    response = requests.get(f"{gateway_url}/openapi.json", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    return response.json()


def session_headers(gateway_url: str, mailbox: Mailbox) -> dict[str, str]:
    """A fresh verified account's session, from an IP of its own (fuzzed failures lock only this account)."""
    client = Client(gateway_url)
    email, password = signup_and_verify(client, mailbox)
    response = client.post("/auth/signin", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}", "X-Forwarded-For": client.ip}


def check_answer(case: Any, response: Any, base_url: str, headers: dict[str, str]) -> None:
    status = response.status_code
    request = case.as_curl_command(headers=headers, base_url=base_url)
    assert status < 500, f"{status} from {case.method} {case.path}:\n{request}\n{response.text[:500]}"
    if status >= 400:
        media = ", ".join(response.headers.get("content-type", []))  # lowercased names, lists of values
        assert media.startswith("application/problem+json"), (
            f"{status} {media!r} (not problem+json) from {case.method} {case.path}:\n{request}\n{response.text[:300]}"
        )
        body = response.json()
        assert re.search(r"/problems/[a-z0-9-]+$", body["type"]), f"{body['type']!r} is no problem page: {request}"
        assert body["status"] == status, request
    elif 200 <= status < 300:  # the answer the operation declares (`response=` of the route)
        case.validate_response(response, checks=[response_schema_conformance], headers=headers)


def fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # nothing to negate (no parameters, no body): positive cases only
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        check_answer(case, response, base_url, headers)

    run()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_fuzzed_requests_never_get_a_5xx_and_every_4xx_is_a_problem(
    contract: Any, raw_contract: dict[str, Any], gateway_url: str, mailbox: Mailbox, path: str, method: str
) -> None:
    assert method.lower() in raw_contract["paths"].get(path, {}), f"{method} {path} is not in the served /openapi.json"
    operation = contract[path][method]
    fuzz(operation, gateway_url, {"X-Forwarded-For": new_ip()})
    if _secured(raw_contract["paths"][path][method.lower()]):
        fuzz(operation, gateway_url, session_headers(gateway_url, mailbox))


def test_the_gateway_serves_the_contract_the_reference_and_the_problem_pages(
    gateway_url: str, raw_contract: dict[str, Any]
) -> None:
    assert raw_contract["openapi"].startswith("3.1")
    assert {"/auth/signin", "/billing/checkout", "/stripe-webhook", "/openapi.json"} <= set(raw_contract["paths"])
    own = requests.get(f"{gateway_url}/auth/openapi.json", timeout=30)
    assert own.status_code == 200 and "/auth/signin" in own.json()["paths"] and "/billing" not in own.json()["paths"]
    docs = requests.get(f"{gateway_url}/docs", timeout=30)
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert "POST /auth/signin" in docs.text and "<script" not in docs.text
    index = requests.get(f"{gateway_url}/problems/", timeout=30)
    assert index.status_code == 200 and "invalid-credentials" in index.text
    # A problem's type URI is the page that explains it.
    refused = requests.post(
        f"{gateway_url}/auth/signin", data="{", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert refused.status_code == 400
    page = requests.get(refused.json()["type"], timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Malformed JSON" in page.text
    unknown = requests.get(f"{gateway_url}/problems/no-such-type", timeout=30)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == "application/problem+json"


# --- The success answers, operation by operation ------------------------------------------------------------------


class Answers:
    """Checks success answers against the schemas of the served contract; remembers which operations it saw."""

    def __init__(self, contract: dict[str, Any]) -> None:
        self.contract = contract
        self.seen: set[tuple[str, str]] = set()

    def check(self, method: str, template: str, response: requests.Response) -> Any:
        operation = self.contract["paths"][template][method.lower()]
        where = f"{method} {template}"
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert str(response.status_code) in success, f"{where}: {response.status_code} {response.text[:300]}"
        answer = operation["responses"][str(response.status_code)]
        media = response.headers.get("Content-Type", "").split(";")[0]
        assert media in answer.get("content", {}), f"{where}: {media} is not the declared {list(answer['content'])}"
        body = response.json()
        schema = answer["content"][media]["schema"]
        assert schema.get("$ref", "").startswith("#/components/schemas/"), f"{where}: no declared answer schema"
        validator = Draft202012Validator(
            {**schema, "components": self.contract["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '(answer)'}: {e.message}" for e in validator.iter_errors(body)
        ]
        assert not errors, f"{where}: the answer does not conform to {schema['$ref']}:\n" + "\n".join(errors[:10])
        self.seen.add((method, template))
        return body


def test_the_answers_of_a_journey_conform_to_the_contract(
    stack: Any, gateway_url: str, raw_contract: dict[str, Any], mailbox: Mailbox
) -> None:
    answers = Answers(raw_contract)
    check = answers.check
    for path in [p for p in raw_contract["paths"] if p.endswith("/health")]:
        check("GET", path, requests.get(f"{gateway_url}{path}", timeout=30))
    check("GET", "/openapi.json", requests.get(f"{gateway_url}/openapi.json", timeout=30))
    check("GET", "/telemetry/catalogue", requests.get(f"{gateway_url}/telemetry/catalogue", timeout=30))

    # A holder: sign-up, confirmation, sign-in, profile, sessions, step-up, second factor.
    client = Client(gateway_url)
    email, password = new_email("contract"), new_password()
    body = {"email": email, "password": password, "first_name": "Ada", "last_name": "Lovelace"}
    check("POST", "/auth/signup", client.post("/auth/signup", json=body))
    token = link_token(mailbox.last(email, "confirm your email"))
    check("POST", "/auth/verify-email", client.post("/auth/verify-email", json={"token": token, "password": password}))
    check("POST", "/auth/verify-email/resend", client.post("/auth/verify-email/resend", json={"email": email}))
    check("POST", "/auth/password/forgot", client.post("/auth/password/forgot", json={"email": new_email()}))
    session = check("POST", "/auth/signin", client.post("/auth/signin", json={"email": email, "password": password}))
    user = client.clone(token=session["session_token"])
    account_id = session["user"]["id"]
    check("GET", "/auth/me", user.get("/auth/me"))
    contact = {"billing_contact": {"company": "Analytical Engines", "country": "GB"}, "first_name": "Augusta"}
    check("PATCH", "/auth/me", user.patch("/auth/me", json=contact))
    check("GET", "/auth/sessions", user.get("/auth/sessions"))
    check("GET", "/auth/security-events", user.get("/auth/security-events"))
    check("POST", "/auth/reauthenticate", user.post("/auth/reauthenticate", json={"current_password": password}))
    check("POST", "/auth/mfa/totp/enroll", user.post("/auth/mfa/totp/enroll", json={"current_password": password}))
    check("POST", "/auth/mfa/totp/disable", user.post("/auth/mfa/totp/disable", json={"current_password": password}))
    check("GET", "/billing", user.get("/billing"))
    check("POST", "/telemetry/events", user.post("/telemetry/events", json={"events": [{"name": "no.such.event"}]}))

    # Privacy: an export, an erasure in its grace period and its cancellation, the access log.
    receipt = check("POST", "/privacy/requests", user.post("/privacy/requests", json={"type": "export"}))
    check("GET", "/privacy/requests", user.get("/privacy/requests"))
    one = f"/privacy/requests/{receipt['request_id']}"
    check("GET", "/privacy/requests/{request_id}", user.get(one))
    erasure = {"type": "erasure", "current_password": password}
    scheduled = check("POST", "/privacy/requests", user.post("/privacy/requests", json=erasure))
    cancel = f"/privacy/requests/{scheduled['request_id']}/cancel"
    check("POST", "/privacy/requests/{request_id}/cancel", user.post(cancel))

    # Staff: reports, the privacy desk, roles.
    support = staff(stack, ["support"])
    check("GET", "/telemetry/reports", support.get("/telemetry/reports"))
    check("GET", "/telemetry/reports", support.get("/telemetry/reports", params={"by": "country", "limit": 3}))
    check("GET", "/telemetry/reports", support.get("/telemetry/reports", params={"by": "feature"}))
    dpo = staff(stack, ["dpo"])
    check("GET", "/admin/privacy/requests", dpo.get("/admin/privacy/requests"))
    check("GET", "/admin/privacy/records", dpo.get("/admin/privacy/records"))
    check("GET", "/admin/privacy/deletion-records", dpo.get("/admin/privacy/deletion-records"))
    leaving = Client(gateway_url)
    leaving_email, leaving_password = signup_and_verify(leaving, mailbox)
    leaving_id = signin(leaving, leaving_email, leaving_password).get("/auth/me").json()["id"]
    dpo_erasure = {"account_id": leaving_id, "reason": "contract test: erasure on request to the DPO"}
    check("POST", "/admin/privacy/erasures", dpo.post("/admin/privacy/erasures", json=dpo_erasure))
    admin = staff(stack, ["admin"])
    roles = {"roles": ["support"], "reason": "contract test: roles answer"}
    check(
        "PUT", "/admin/staff/{account_id}/roles", admin.request("PUT", f"/admin/staff/{account_id}/roles", json=roles)
    )
    check("GET", "/privacy/access-log", user.get("/privacy/access-log"))
    assert user.post("/auth/signout").status_code == 204  # no body

    declared = {
        (m.upper(), p)
        for p, ops in raw_contract["paths"].items()
        for m, op in ops.items()
        if any(
            "application/json" in answer.get("content", {})
            for status, answer in op["responses"].items()
            if status.startswith("2")
        )
    }
    assert len(answers.seen) >= 30 and answers.seen <= declared
