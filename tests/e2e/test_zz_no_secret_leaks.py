"""After the whole suite: no password and no session token in clear anywhere the system wrote (P1).

Runs last (marker `after_suite`): it scans every Firestore document of the session's project,
every line the gateway logged, every mail the sink received and every response body the tests
read, for every password and session token the suite used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from tests.support import PASSWORDS_USED, RESPONSE_BODIES, SESSION_TOKENS_SEEN

pytestmark = [pytest.mark.after_suite, pytest.mark.policy("P1", "P21")]


def _documents(collection: firestore.CollectionReference) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in collection.stream():
        yield doc.reference.path, doc.to_dict() or {}
        for sub in doc.reference.collections():
            yield from _documents(sub)


def firestore_text(project: str) -> str:
    db = firestore.Client(project=project)
    return "\n".join(
        f"{path} {json.dumps(data, default=str, ensure_ascii=False)}"
        for collection in db.collections()
        for path, data in _documents(collection)
    )


def mail_text(mail_dir: Path) -> str:
    from devstack.mail import message_text, read_messages

    return "\n".join(f"{m['Subject']}\n{m['To']}\n{message_text(m)}" for m in read_messages(mail_dir))


def _secrets() -> set[str]:
    return {p for p in PASSWORDS_USED if len(set(p)) > 4}


def test_no_password_or_session_token_in_firestore(stack: Any) -> None:
    text = firestore_text(stack.env["GOOGLE_CLOUD_PROJECT"])
    assert text, "the suite wrote nothing to Firestore: the scan would prove nothing"
    assert not [p for p in _secrets() if p in text]
    assert not [t for t in SESSION_TOKENS_SEEN if t in text]


def test_no_password_or_session_token_in_a_log_line(stack: Any) -> None:
    log = Path(stack.gateway_log).read_text(encoding="utf-8", errors="replace")
    assert '"severity"' in log, "the gateway log holds no structured line: the scan would prove nothing"
    assert not [p for p in _secrets() if p in log]
    assert not [t for t in SESSION_TOKENS_SEEN if t in log]


def test_no_password_in_a_mail_or_a_response_body(stack: Any) -> None:
    mails = mail_text(Path(stack.mail_dir))
    assert mails
    assert not [p for p in _secrets() if p in mails]
    assert not [t for t in SESSION_TOKENS_SEEN if t in mails]
    bodies = "\n".join(RESPONSE_BODIES)
    assert not [p for p in _secrets() if p in bodies]


@pytest.mark.policy("P29")
def test_every_mail_names_the_controller_and_the_dpo(stack: Any) -> None:
    from devstack.mail import message_text, read_messages

    messages = read_messages(Path(stack.mail_dir))
    assert messages
    for message in messages:
        text = message_text(message)
        assert "Data Protection Officer: dpo@wizyvision.com" in text, message["Subject"]
        assert "WizyVision SAS, 16-18 rue de Londres, 75009 Paris" in text
