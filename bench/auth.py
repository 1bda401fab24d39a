"""Bench of the auth function (issue: foundation and identity).

1. Sign-in latency through the gateway (p50, p95) against the bare bcrypt check at the same cost on
   the same machine: the ratio is the overhead of everything around the hash (HTTP, validation,
   throttle reads, Firestore session write, security event).
2. Sign-in p95 under 30 parallel clients (each its own account and network), against the same bare
   bcrypt check run by 30 threads at once: the gateway's work under contention.
3. Forgot-password for a known and an unknown address, side by side: the same work for both (P22),
   so the ratio must stay within 1.1.
4. Cold start: process start to first answer of `functions-framework --target auth`, against a
   bare functions-framework function that imports nothing.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bcrypt
import requests

from bench.common import free_port, median, percentile, row, timed

ROOT = Path(__file__).resolve().parent.parent
SIGNINS = 40
COLD_STARTS = 5


def _verified_account(base: str, mail: Any) -> tuple[str, str]:
    email = f"bench.{secrets.token_hex(4)}@example.com"
    password = f"bench-{secrets.token_urlsafe(12)}"
    headers = {"X-Forwarded-For": "198.51.100.10", "User-Agent": "bench"}
    body = {"email": email, "password": password, "first_name": "Bench", "last_name": "Mark"}
    requests.post(f"{base}/auth/signup", json=body, headers=headers, timeout=30).raise_for_status()
    message = mail.to(email)
    from tests.support import link_token

    confirm = {"token": link_token(message), "password": password}
    requests.post(f"{base}/auth/verify-email", json=confirm, headers=headers, timeout=30).raise_for_status()
    return email, password


def signin_latency(stack: Any, cost: int) -> list[str]:
    base = stack.gateway_url
    email, password = _verified_account(base, stack.mail)
    headers = {"X-Forwarded-For": "198.51.100.10", "User-Agent": "bench"}
    session = requests.Session()

    def signin() -> None:
        response = session.post(
            f"{base}/auth/signin", json={"email": email, "password": password}, headers=headers, timeout=30
        )
        assert response.status_code == 200, response.text

    signin()  # warm: first-use imports, password list, connection pool
    stored = bcrypt.hashpw(b"x" * 44, bcrypt.gensalt(rounds=cost))
    samples, bare = [], []
    for _ in range(SIGNINS):  # interleaved, so both see the same machine (the emulators' background work)
        samples += timed(signin, 1)
        bare += timed(lambda: bcrypt.checkpw(b"x" * 44, stored), 1)
    p50, p95, b50, b95 = (percentile(samples, 50), percentile(samples, 95), percentile(bare, 50), percentile(bare, 95))
    return [
        f"auth sign-in through the gateway (bcrypt cost {cost}, {SIGNINS} sign-ins):",
        row("sign-in p50", f"{p50 * 1000:.1f} ms", f"{b50 * 1000:.1f} ms", p50 / b50),
        row("sign-in p95", f"{p95 * 1000:.1f} ms", f"{b95 * 1000:.1f} ms", p95 / b95),
        f"  (baseline: bare bcrypt.checkpw at cost {cost}, interleaved with the sign-ins; overhead p50 = "
        f"{(p50 - b50) * 1000:.1f} ms)",
    ]


PARALLEL = 30
FORGOTS = 60


def parallel_signins(stack: Any, cost: int) -> list[str]:
    """p95 of sign-ins when 30 clients sign in at once (two rounds), against 30 threads of bare bcrypt."""
    from concurrent.futures import ThreadPoolExecutor

    base = stack.gateway_url
    accounts = [_verified_account(base, stack.mail) for _ in range(PARALLEL)]

    def signin(i: int) -> float:
        email, password = accounts[i % PARALLEL]
        headers = {"X-Forwarded-For": f"198.51.100.{100 + i % PARALLEL}", "User-Agent": "bench"}
        began = time.perf_counter()
        response = requests.post(
            f"{base}/auth/signin", json={"email": email, "password": password}, headers=headers, timeout=60
        )
        assert response.status_code == 200, response.text
        return time.perf_counter() - began

    stored = bcrypt.hashpw(b"x" * 44, bcrypt.gensalt(rounds=cost))

    def bare(_: int) -> float:
        began = time.perf_counter()
        bcrypt.checkpw(b"x" * 44, stored)
        return time.perf_counter() - began

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        samples = list(pool.map(signin, range(PARALLEL * 2)))
        baseline = list(pool.map(bare, range(PARALLEL * 2)))
    p95, b95 = percentile(samples, 95), percentile(baseline, 95)
    return [
        f"auth sign-in under {PARALLEL} parallel clients ({PARALLEL * 2} sign-ins):",
        row("sign-in p95", f"{p95 * 1000:.0f} ms", f"{b95 * 1000:.0f} ms", p95 / b95),
        f"  (baseline: {PARALLEL} threads of bare bcrypt.checkpw at cost {cost} on the same 2 cores)",
    ]


def forgot_password(stack: Any) -> list[str]:
    """POST /auth/password/forgot for a known and an unknown address, interleaved: the answers' times."""
    base = stack.gateway_url
    known, _ = _verified_account(base, stack.mail)
    session = requests.Session()
    headers = {"X-Forwarded-For": "198.51.100.11", "User-Agent": "bench"}

    def forgot(address: str) -> None:
        response = session.post(f"{base}/auth/password/forgot", json={"email": address}, headers=headers, timeout=30)
        assert response.status_code == 202, response.text

    forgot(known)  # warm
    known_times: list[float] = []
    unknown_times: list[float] = []
    for i in range(FORGOTS):
        for address, into in ((known, known_times), (f"nobody.{i}@example.com", unknown_times)):
            began = time.perf_counter()
            forgot(address)
            into.append(time.perf_counter() - began)
    k, u = median(known_times), median(unknown_times)
    return [
        f"auth forgot-password, known against unknown address (median of {FORGOTS} each, interleaved):",
        row("forgot, known address", f"{k * 1000:.1f} ms", f"{u * 1000:.1f} ms", k / u),
        "  (baseline: the same call for an address with no account; within 1.1 means no timing oracle)",
    ]


def _cold_start(target: str, source: Path, path: str, env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except requests.ConnectionError:
                time.sleep(0.005)
        raise RuntimeError(f"{target} did not answer within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=10)


def cold_start(stack: Any) -> list[str]:
    env = {**os.environ, **stack.env}
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "main.py"
        bare.write_text("def hello(request):\n    return 'ok'\n")
        bare_times = [_cold_start("hello", bare, "/", env) for _ in range(COLD_STARTS)]
    auth_times = [_cold_start("auth", ROOT / "main.py", "/auth/health", env) for _ in range(COLD_STARTS)]
    a, b = median(auth_times), median(bare_times)
    return [
        f"auth cold start (process start to first answer, median of {COLD_STARTS}):",
        row("auth GET /auth/health", f"{a * 1000:.0f} ms", f"{b * 1000:.0f} ms", a / b),
        "  (baseline: a bare functions-framework function that imports nothing)",
    ]
