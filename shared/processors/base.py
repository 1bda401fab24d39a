"""What every processor adapter shares: the "not configured" and "disabled" answers, and the erase guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from shared.observability import get_logger
from shared.processors import ProcessorError, StepOutcome, Subject

log = get_logger(__name__)

NOT_CONFIGURED = "not configured"
DISABLED = "disabled"


def not_configured(name: str, missing: str) -> ProcessorError:
    """A processor whose credentials are missing: never a silent success (P11)."""
    return ProcessorError(StepOutcome("failed", f"{NOT_CONFIGURED}: {missing} not set"))


def run_erase(name: str, steps: Callable[[], StepOutcome]) -> StepOutcome:
    """Run an adapter's erasure: a ProcessorError becomes its outcome; a bug becomes "failed", never a raise."""
    try:
        outcome = steps()
    except ProcessorError as exc:
        outcome = exc.outcome
    except Exception as exc:
        log.error("processor erasure crashed", processor=name, error=type(exc).__name__, exc_info=True)  # noqa: G201
        outcome = StepOutcome("failed", f"unexpected {type(exc).__name__}")
    log.info("processor erasure", processor=name, status=outcome.status, detail=outcome.detail)
    return outcome


class DisabledAdapter:
    """A processor this environment genuinely does not use (`PROCESSORS_DISABLED`): recorded as such."""

    def __init__(self, name: str) -> None:
        self.name = name

    def export(self, subject: Subject) -> dict[str, Any]:
        return {"found": False, "disabled": True}

    def erase(self, subject: Subject) -> StepOutcome:
        return StepOutcome("done", DISABLED)


def pick(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """An allow-list of a processor object's fields (anything else it carries never leaves the adapter)."""
    if not isinstance(obj, dict):
        return {}
    return {name: obj[name] for name in fields if name in obj}


# --- Marketing consent (P18): an optional capability of the adapters of processors that send marketing ----


@runtime_checkable
class ConsentSync(Protocol):
    """An adapter that can carry the holder's marketing answer to its processor (HubSpot, Intercom).

    `sync_consent` sets the processor's state to `marketing` (idempotent: calling it twice is harmless),
    and answers like `erase`: "done", "not_found" (the processor does not know the person: nothing to
    change), "retry" (429, 5xx, network) or "failed" (with detail "not configured: ..." when the
    credentials are missing); it never raises.
    """

    name: str

    def sync_consent(self, subject: Subject, marketing: bool) -> StepOutcome: ...


def run_sync(name: str, steps: Callable[[], StepOutcome]) -> StepOutcome:
    """Run an adapter's consent sync: a ProcessorError becomes its outcome; a bug becomes "failed"."""
    try:
        outcome = steps()
    except ProcessorError as exc:
        outcome = exc.outcome
    except Exception as exc:
        log.error("processor consent sync crashed", processor=name, error=type(exc).__name__, exc_info=True)  # noqa: G201
        outcome = StepOutcome("failed", f"unexpected {type(exc).__name__}")
    log.info("processor consent sync", processor=name, status=outcome.status, detail=outcome.detail)
    return outcome
