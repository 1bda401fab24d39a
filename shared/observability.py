"""One structured logger (P6): a JSON object per line, as Cloud Logging reads them.

Every line carries `severity`, `message`, `time` and, inside a request, the trace id
(`logging.googleapis.com/trace`). Fields whose name says they hold a secret are redacted before
the line is written (P1: never a password or token in a log line).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|pepper|otp|recovery|code$",
    re.IGNORECASE,
)
_REDACTED = "[redacted]"

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_span: contextvars.ContextVar[str | None] = contextvars.ContextVar("span", default=None)
_keys: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("log_keys", default=None)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named field replaced."""
    if isinstance(value, Mapping):
        return {k: (_REDACTED if _SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _snapshot() -> dict[str, Any]:
    return {"trace": _trace.get(), "span": _span.get(), "keys": _keys.get() or {}}


class JsonFormatter(logging.Formatter):
    def __init__(self, project_id: str = "") -> None:
        super().__init__()
        self.project_id = project_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        context = getattr(record, "log_context", None) or _snapshot()
        entry.update(redact(dict(context["keys"])))
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(redact(dict(fields)))
        if context["trace"]:
            trace = context["trace"]
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project_id}/traces/{trace}" if self.project_id else trace
            )
            if context["span"]:
                entry["logging.googleapis.com/spanId"] = context["span"]
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class Logger:
    """A thin facade: `logger.info("signed in", account_id=...)`; keyword fields become JSON fields.

    `alert=True` marks a line the alert policy in terraform/monitoring.tf pages on (P6).
    """

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, message: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                message,
                exc_info=exc_info,
                extra={"fields": fields, "log_context": _snapshot()},
                stacklevel=3,
            )

    def debug(self, message: str, **fields: Any) -> None:
        self._log(logging.DEBUG, message, False, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log(logging.INFO, message, False, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log(logging.WARNING, message, False, fields)

    def error(self, message: str, *, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, message, exc_info, fields)

    def alert(self, message: str, **fields: Any) -> None:
        """An ERROR line carrying `alert`: a log-based metric in terraform pages the team."""
        self._log(
            logging.ERROR,
            message,
            False,
            {"alert": fields.pop("alert_name", message), **fields},
        )


_configured = False


def configure_logging(project_id: str = "", level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON lines (idempotent; called by the composition root)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(project_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "google", "grpc", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str) -> Logger:
    return Logger(name)


def parse_trace_header(cloud_trace: str | None, traceparent: str | None) -> tuple[str | None, str | None]:
    """Trace and span ids from `X-Cloud-Trace-Context: TRACE/SPAN;o=1` or W3C `traceparent`."""
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) >= 3 and len(parts[1]) == 32:
            return parts[1], parts[2]
    if cloud_trace:
        trace, _, rest = cloud_trace.partition("/")
        span = rest.split(";", 1)[0] or None
        if re.fullmatch(r"[0-9a-fA-F]{32}", trace):
            return trace, span
    return None, None


@contextmanager
def log_context(trace: str | None = None, span: str | None = None, **keys: Any) -> Iterator[None]:
    """Bind a trace id and extra keys to every line logged inside the block (this thread only)."""
    tokens = [_trace.set(trace), _span.set(span), _keys.set({**(_keys.get() or {}), **keys})]
    try:
        yield
    finally:
        _keys.reset(tokens[2])
        _span.reset(tokens[1])
        _trace.reset(tokens[0])
