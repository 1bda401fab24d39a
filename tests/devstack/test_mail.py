"""The SMTP sink stores every message as the next numbered .eml file; the reader parses them."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from devstack import MailSink, SmtpSink, message_text, read_messages, wait_for_message
from devstack.procs import free_port

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")


def _send(port: int, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "WizyVision <no-reply@wizyvision.com>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def test_stack_sink_writes_each_message_to_a_numbered_file(stack) -> None:
    sink = MailSink(stack.mail_dir)
    before = sink.mark()
    to = f"user-{uuid.uuid4().hex[:8]}@example.com"
    _send(int(stack.env["SMTP_PORT"]), to, "Hello from the test", "Body line ✓")
    try:
        message = sink.to(to, timeout=10, after=before)

        assert message["Subject"] == "Hello from the test"
        assert "Body line ✓" in message_text(message)
        assert message["X-Envelope-To"] == to
        files = sink.files()
        assert files and all(p.suffix == ".eml" and p.stem.isdigit() for p in files)
        assert int(files[-1].stem) > before
        assert not list(Path(stack.mail_dir).glob(".*.tmp")), "a temp file was left behind"
    finally:
        # The after-suite scans read every stored mail as one the application sent: leave none of ours.
        for path in sink.files():
            if to in path.read_text(errors="replace"):
                path.unlink()


def test_numbering_increases_and_survives_a_restart(tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    port = free_port()
    with SmtpSink(mail_dir, port):
        _send(port, "a@example.com", "one", "1")
        _send(port, "b@example.com", "two", "2")
        wait_for_message(mail_dir, lambda m: m["Subject"] == "two", timeout=10)
    port = free_port()
    with SmtpSink(mail_dir, port):
        _send(port, "c@example.com", "three", "3")
        third = wait_for_message(mail_dir, lambda m: m["Subject"] == "three", timeout=10)

    names = [p.name for p in MailSink(mail_dir).files()]
    assert names == ["000001.eml", "000002.eml", "000003.eml"]
    assert [m["Subject"] for m in read_messages(mail_dir)] == ["one", "two", "three"]
    assert third["To"] == "c@example.com"


def test_wait_for_message_times_out_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "000001.eml").write_bytes(b"Subject: unrelated\r\n\r\nx\r\n")
    with pytest.raises(TimeoutError, match="unrelated"):
        wait_for_message(tmp_path, lambda m: m["Subject"] == "wanted", timeout=0.3)


def test_wait_for_only_considers_messages_after_the_mark(tmp_path: Path) -> None:
    (tmp_path / "000001.eml").write_bytes(b"Subject: old\r\n\r\nx\r\n")
    sink = MailSink(tmp_path)
    mark = sink.mark()
    assert mark == 1
    with pytest.raises(TimeoutError):
        sink.wait_for(lambda m: m["Subject"] == "old", timeout=0.2, after=mark)
