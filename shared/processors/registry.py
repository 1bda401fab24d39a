"""Builds the processor adapters in the order of shared.datamap.PROCESSORS (placeholder until they land)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import datamap
from shared.processors import ProcessorAdapter, ProcessorError, StepOutcome, Subject

if TYPE_CHECKING:
    from shared.config import Settings


class _Pending:
    """Placeholder: never counts as erased."""

    def __init__(self, name: str) -> None:
        self.name = name

    def export(self, subject: Subject) -> dict[str, Any]:
        raise ProcessorError(StepOutcome("failed", "adapter not implemented yet"))

    def erase(self, subject: Subject) -> StepOutcome:
        return StepOutcome("failed", "adapter not implemented yet")


def build_adapters(settings: Settings) -> list[ProcessorAdapter]:
    return [_Pending(p.name) for p in datamap.PROCESSORS]
