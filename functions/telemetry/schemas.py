"""Request bodies and query parameters of the telemetry function."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.telemetry.model import MAX_EVENTS


class EventBatch(BaseModel):
    """`POST /telemetry/events`. Events are checked one by one against the catalogue, so a bad event
    is a rejection in the answer, not a refusal of the batch."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, max_length=253)
    events: list[Any] = Field(min_length=1, max_length=MAX_EVENTS)
