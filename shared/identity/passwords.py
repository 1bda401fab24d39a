"""Password hashing and password policy (P1, P25).

bcrypt reads only the first 72 bytes of its input (and bcrypt 5 raises beyond them), while the
policy allows 128 characters of any script. So the password, NFKC-normalised and UTF-8 encoded, is
first condensed by HMAC-SHA256 keyed with a server-side pepper (Secret Manager), base64-encoded to
44 bytes, and that is what bcrypt hashes. Every byte of the password counts; a database leak alone
is not enough to start guessing (the pepper is not in the database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import unicodedata
from functools import cache
from importlib import resources

import bcrypt

SCHEME = "hmac-sha256+bcrypt"
MIN_LENGTH = 12
MAX_LENGTH = 128


class PasswordRejected(ValueError):
    """The password breaks the policy; `reason` is a stable slug for the client."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the most common passwords, lower-cased (read once, on first use)."""
    text = resources.files("shared.identity").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line and not line.startswith("#"))


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, email: str | None = None) -> None:
    """NIST SP 800-63B: length 12..128 characters, no composition rules, no known or guessable password."""
    length = len(normalise(password))
    if length < MIN_LENGTH:
        raise PasswordRejected("too-short", f"Use at least {MIN_LENGTH} characters.")
    if length > MAX_LENGTH:
        raise PasswordRejected("too-long", f"Use at most {MAX_LENGTH} characters.")
    lowered = normalise(password).lower()
    if lowered in common_passwords():
        raise PasswordRejected("too-common", "This password is among the most common ones; choose another.")
    if len(set(lowered)) <= 2:
        raise PasswordRejected(
            "too-repetitive",
            "This password repeats too few characters; choose another.",
        )
    if email:
        address = email.strip().lower()
        if lowered in {address, address.split("@", 1)[0]}:
            raise PasswordRejected("matches-email", "The password must not be your email address.")
    if "wizyvision" in lowered and len(lowered.replace("wizyvision", "")) < 6:
        raise PasswordRejected("too-guessable", "The password must not be built on the service's name.")


class PasswordHasher:
    """Hash and verify passwords; thread-safe, one per process."""

    def __init__(self, pepper: bytes, cost: int) -> None:
        self._pepper = pepper
        self.cost = cost
        self._dummy: bytes | None = None
        self._lock = threading.Lock()

    def _prehash(self, password: str) -> bytes:
        digest = hmac.new(self._pepper, normalise(password).encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest)

    def hash(self, password: str) -> str:
        return bcrypt.hashpw(self._prehash(password), bcrypt.gensalt(rounds=self.cost)).decode("ascii")

    def verify(self, password: str, stored: str | None) -> bool:
        """True when `password` matches `stored`. With no stored hash, burns the same time and says no."""
        if not stored:
            self._burn(password)
            return False
        try:
            return bcrypt.checkpw(self._prehash(password), stored.encode("ascii"))
        except ValueError:
            self._burn(password)
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return int(stored.split("$")[2]) != self.cost
        except (IndexError, ValueError):
            return True

    def _burn(self, password: str) -> None:
        """A dummy bcrypt check so an unknown account answers in the same time as a wrong password."""
        if self._dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = bcrypt.hashpw(b"dummy-password-for-timing", bcrypt.gensalt(rounds=self.cost))
        bcrypt.checkpw(self._prehash(password), self._dummy)
