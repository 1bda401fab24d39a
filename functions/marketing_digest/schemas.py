"""The answer of the marketing-digest function."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DigestRun(BaseModel):
    """What one run did: digests queued now, accounts already served this month, skipped, failed."""

    model_config = ConfigDict(extra="forbid")

    sent: int = Field(description="Digests queued on the outbox by this run.")
    already_sent: int = Field(description="Consenting accounts already served this month.")
    not_eligible: int = Field(description="Consenting accounts that are not active or have objected.")
    failed: int = Field(description="Digests that could not be queued (the run answers 503).")
