"""Local SMTP sink (aiosmtpd) and a reader for the messages it stores.

Every message received is written to ``<mail_dir>/<n>.eml`` (n = 000001,
000002, ... increasing), atomically: written to a dot-prefixed temp file, then
renamed.  Readers only ever see complete files.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from devstack.errors import DevstackError

_NAME = re.compile(r"^(\d+)\.eml$")


def _number(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def message_files(mail_dir: Path | str) -> list[Path]:
    """The stored ``.eml`` files of ``mail_dir``, oldest first."""
    directory = Path(mail_dir)
    if not directory.is_dir():
        return []
    numbered = [(n, p) for p in directory.iterdir() if (n := _number(p)) is not None]
    return [p for _, p in sorted(numbered)]


def parse_message(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def read_messages(mail_dir: Path | str) -> list[EmailMessage]:
    """Every message stored in ``mail_dir``, oldest first, parsed."""
    return [parse_message(p) for p in message_files(mail_dir)]


def message_text(message: EmailMessage) -> str:
    """The plain-text body (or the HTML one when there is no plain text)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else content.decode(errors="replace")


def wait_for_message(
    mail_dir: Path | str,
    predicate: Callable[[EmailMessage], bool] = lambda _m: True,
    timeout: float = 10.0,
    after: int = 0,
    interval: float = 0.05,
) -> EmailMessage:
    """Poll ``mail_dir`` until a message numbered above ``after`` matches ``predicate``.

    Raises TimeoutError after ``timeout`` seconds, listing the subjects seen.
    """
    deadline = time.monotonic() + timeout
    seen: dict[Path, EmailMessage] = {}
    while True:
        for path in message_files(mail_dir):
            number = _number(path)
            if number is None or number <= after:
                continue
            if path not in seen:
                seen[path] = parse_message(path)
                if predicate(seen[path]):
                    return seen[path]
        if time.monotonic() >= deadline:
            subjects = [str(m.get("Subject", "")) for m in seen.values()]
            raise TimeoutError(f"no matching message in {mail_dir} within {timeout:g}s (new messages seen: {subjects})")
        time.sleep(interval)


class MailSink:
    """Reader for a mail folder.

    ``mark()`` returns the number of the newest stored message so that a
    later ``wait_for(..., after=mark)`` considers only messages sent since.
    """

    def __init__(self, mail_dir: Path | str) -> None:
        self.mail_dir = Path(mail_dir)

    def files(self) -> list[Path]:
        return message_files(self.mail_dir)

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.mail_dir)

    def mark(self) -> int:
        files = self.files()
        return (_number(files[-1]) or 0) if files else 0

    def wait_for(
        self,
        predicate: Callable[[EmailMessage], bool] = lambda _m: True,
        timeout: float = 10.0,
        after: int = 0,
    ) -> EmailMessage:
        return wait_for_message(self.mail_dir, predicate, timeout=timeout, after=after)

    def to(self, address: str, timeout: float = 10.0, after: int = 0) -> EmailMessage:
        """Wait for a message addressed (To/Cc or envelope) to ``address``."""
        wanted = address.lower()

        def match(message: EmailMessage) -> bool:
            fields = [
                message.get("To", ""),
                message.get("Cc", ""),
                message.get("X-Envelope-To", ""),
            ]
            return any(wanted in str(f).lower() for f in fields)

        return self.wait_for(match, timeout=timeout, after=after)


# --------------------------------------------------------------------------- server


class _FileWriter:
    """aiosmtpd handler: store each message as the next numbered .eml file."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self._lock = threading.Lock()
        files = message_files(mail_dir)
        self._last = (_number(files[-1]) or 0) if files else 0

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        with self._lock:
            self._last += 1
            number = self._last
        envelope = (f"X-Envelope-From: {mail_from}\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n").encode()
        final = self.mail_dir / f"{number:06d}.eml"
        tmp = self.mail_dir / f".{number:06d}.eml.tmp"
        with open(tmp, "wb") as handle:
            handle.write(envelope + content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        return final

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        self.store(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], content)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on ``host:port`` writing every message to ``mail_dir``.

    ``stop()`` closes the port (a client then gets "connection refused", as from a relay that is
    down); ``start()`` again listens on the same port and goes on numbering after the last file.
    """

    def __init__(self, mail_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.mail_dir = Path(mail_dir)
        self.host = host
        self.port = port
        self._controller: Any = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            _FileWriter(self.mail_dir),
            hostname=self.host,
            port=self.port,
            ready_timeout=10.0,
        )
        try:
            controller.start()
        except Exception as exc:
            raise DevstackError(f"SMTP sink could not listen on {self.host}:{self.port}: {exc}") from exc
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
