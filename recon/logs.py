"""Logging, set up once per process: a human format for terminals, JSON lines on request.

Records are masked when they are created (see `recon.redaction`), before any handler sees them;
every handler known at setup also carries a `RedactionFilter` for records built some other way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from recon.redaction import install_log_record_redaction, redact_record

_HUMAN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactionFilter(logging.Filter):
    """Masks a record that did not come through the redacting record factory (belt and braces:
    a library may replace the factory or build records by hand)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


_configured = False
_CHATTY_LIBRARIES = (
    "alembic",
    "httpx",
    "httpcore",
    "urllib3",
    "hvac",
    "uvicorn",
    "stripe",
    "great_expectations",
)
# One line per provider request: kept in JSON logs (for operators), not on a person's terminal.
_REQUEST_LOGGERS = ("recon.http", "recon.stripe")


def attach_redaction_everywhere() -> None:
    """Add the redaction filter to every handler of every logger known so far.

    Call again after a library (Prefect, uvicorn) installs handlers of its own.
    """
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactionFilter) for f in handler.filters):
                handler.addFilter(RedactionFilter())


def remove_handler() -> None:
    """Take the handler `configure_logging` installed off the root logger (end of a command)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_recon_handler", False):
            root.removeHandler(handler)
    for name in (*_CHATTY_LIBRARIES, *_REQUEST_LOGGERS):
        logging.getLogger(name).setLevel(logging.NOTSET)


def configure_logging(
    level: str = "INFO", fmt: str = "human", stream: TextIO | None = None
) -> logging.Handler:
    """Install the root handler (once; later calls replace it) and redact every handler."""
    global _configured
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_recon_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_HUMAN_FORMAT))
    handler._recon_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that narrate routine steps at INFO speak only when debugging.
    for chatty in _CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    for requests_logger in _REQUEST_LOGGERS:
        quiet = fmt == "human" and level != "DEBUG"
        logging.getLogger(requests_logger).setLevel(logging.WARNING if quiet else logging.NOTSET)
    install_log_record_redaction()
    attach_redaction_everywhere()
    _configured = True
    return handler
