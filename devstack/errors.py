"""Errors devstack reports to a person in one clear message."""


class DevstackError(RuntimeError):
    """A problem with the local stack, worded for the person who runs it."""
