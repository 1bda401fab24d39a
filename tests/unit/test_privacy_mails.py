"""The deletion mail tells the whole truth about what is left (P11)."""

from __future__ import annotations

import pytest

from shared.privacy.mails import erasure_completed

pytestmark = pytest.mark.policy("P11")


def test_the_deletion_mail_speaks_of_backups_exactly_when_they_hold_copies() -> None:
    assert "backup" not in erasure_completed("ada@example.com", "Ada", "prq_1").text
    told = erasure_completed("ada@example.com", "Ada", "prq_1", backup_window_days=7).text
    assert "up to 7 days" in told and "never restored for one account" in told
