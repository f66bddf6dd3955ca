"""Structured logs: one JSON object per line from every gemq process (structlog over stdlib logging).

Celery's, gunicorn's and our own records all pass through the same formatter.  A redaction step
drops fields that could carry a prompt, an answer or a secret, should a caller ever pass one.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

#: Event fields never written to a log, whoever passes them.
REDACTED_FIELDS = frozenset(
    {"prompt", "contents", "text", "partial_text", "result", "system_instruction", "api_key", "authorization",
     "secret", "webhook_secret", "password", "request"}
)


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for name in REDACTED_FIELDS.intersection(event):
        event[name] = "[redacted]"
    return event


def configure_logging(*, level: str = "INFO", json: bool = True, process: str = "gemq") -> None:
    """Send every log record to stderr as one JSON line (or a readable line when ``json`` is False)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.CallsiteParameterAdder([structlog.processors.CallsiteParameter.PROCESS]),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=process)
