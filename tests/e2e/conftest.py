"""Fixtures for end-to-end tests: a user's client on the gateway and the mailbox of the SMTP sink."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.mail import MailSink
from tests.support import Client, Mailbox


@pytest.fixture
def client(stack: Any) -> Client:
    return Client(stack.gateway_url)


@pytest.fixture
def mailbox(stack: Any) -> Mailbox:
    return Mailbox(MailSink(stack.mail_dir))
