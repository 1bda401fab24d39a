"""One adapter per processor of the data map (P11, P14, P24, P26).

The interface (what the privacy workflow codes against)::

    from shared.processors import Subject, StepOutcome, ProcessorAdapter, processor_adapters

    @dataclass(frozen=True)
    class Subject:                      # who the request is about, as each processor knows them
        account_id: str
        email: str
        firebase_uid: str | None = None
        stripe_customer_id: str | None = None

    @dataclass(frozen=True)
    class StepOutcome:
        status: Literal["done", "not_found", "retry", "failed"]
        detail: str = ""                # never personal data: safe for the deletion record
        retry_after: float | None = None  # seconds, from Retry-After on a 429 (None: use your backoff)
        @property
        def succeeded(self) -> bool     # "done" or "not_found"

    class ProcessorAdapter(Protocol):
        name: str                       # equals a shared.datamap.Processor name ("Google", "Stripe", ...)
        def export(self, subject: Subject) -> dict[str, Any]: ...  # what the processor holds (JSON-able)
        def erase(self, subject: Subject) -> StepOutcome: ...      # permanent deletion

    def processor_adapters(settings: Settings) -> list[ProcessorAdapter]
        # one per processor in shared.datamap.PROCESSORS, in that order, which is the erasure order

Contract of every adapter:

- `erase` never raises for a processor's answer: not found (404, or no such user/contact/customer)
  is `not_found`, which counts as done; 429 is `retry` with `retry_after` from `Retry-After`; 5xx
  and network errors are `retry`; any other 4xx is `failed` with a detail. An adapter never sleeps:
  the caller decides when to try again. `erase` is idempotent (a second call after success answers
  `not_found` or `done`).
- A processor with no credentials configured is `failed` with detail "not configured", never a
  silent success, unless `PROCESSORS_DISABLED` names it (an environment where it is genuinely not
  used): then `done` with detail "disabled", which the deletion record shows as such.
- `export` raises `ProcessorError` (with `.outcome`, the same classification) when the processor
  cannot answer; it returns `{"found": False}` when the processor holds nothing, else
  `{"found": True, ...}` with an allow-list of fields (no card data, no credentials).
- Every outgoing HTTP call goes through `shared.processors.http.ProcessorHttp`, which refuses a
  host that `shared.datamap.host_allowed` does not allow (P14).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from shared.config import Settings

Status = Literal["done", "not_found", "retry", "failed"]


@dataclass(frozen=True)
class Subject:
    """Who a request is about, as each processor knows them."""

    account_id: str
    email: str
    firebase_uid: str | None = None
    stripe_customer_id: str | None = None


@dataclass(frozen=True)
class StepOutcome:
    """The outcome of one processor step. `detail` never holds personal data (it goes to the record)."""

    status: Status
    detail: str = ""
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("done", "not_found")


class ProcessorError(RuntimeError):
    """A processor could not answer an export; `outcome` says whether to retry."""

    def __init__(self, outcome: StepOutcome) -> None:
        super().__init__(f"{outcome.status}: {outcome.detail}")
        self.outcome = outcome


class ProcessorAdapter(Protocol):
    name: str

    def export(self, subject: Subject) -> dict[str, Any]: ...

    def erase(self, subject: Subject) -> StepOutcome: ...


def processor_adapters(settings: Settings) -> list[ProcessorAdapter]:
    """One adapter per processor of `shared.datamap.PROCESSORS`, in that order (the erasure order)."""
    from shared.processors.registry import build_adapters

    return build_adapters(settings)


__all__ = ["ProcessorAdapter", "ProcessorError", "StepOutcome", "Subject", "processor_adapters"]
