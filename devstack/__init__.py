"""devstack: the local Google Cloud stack for make run and the test suite."""

from devstack.errors import DevstackError
from devstack.mail import MailSink, SmtpSink, message_text, read_messages, wait_for_message
from devstack.stack import Ports, Stack, StackInfo

__all__ = [
    "DevstackError",
    "MailSink",
    "Ports",
    "SmtpSink",
    "Stack",
    "StackInfo",
    "message_text",
    "read_messages",
    "wait_for_message",
]
