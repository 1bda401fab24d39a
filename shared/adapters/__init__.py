"""Adapters to Google Cloud and the outside world; wired once by shared.bootstrap."""
