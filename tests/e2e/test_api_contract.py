"""Fuzzing every operation of the published contract (`/openapi.json`) against the local stack (P5, P22).

Schemathesis generates requests from the merged OpenAPI document the gateway serves, valid ones and
invalid ones (wrong types, missing fields, unknown fields, odd strings), and sends them through the
gateway like any client. What must hold for every answer:

- never a 5xx: bad input is the client's problem, answered 4xx;
- every 4xx is `application/problem+json` whose `type` is a page under `/problems/`, so clients can
  branch on it (429 from the throttle counts: it is a 4xx problem like the others).

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
from schemathesis import GenerationMode

from functions.api_docs.routes import merged_document
from tests.support import Client, Mailbox, new_ip, signup_and_verify

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
