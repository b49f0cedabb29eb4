"""Logging setup: plain text for people (default) or one JSON object per line for collectors
(``ZBMC_LOG_FORMAT=json``). Request fields travel as ``extra={...}`` on the log record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes a LogRecord may carry through ``extra``, in the order they are written.
FIELDS = ("request_id", "tenant_id", "method", "path", "action", "code", "status", "duration_ms")
access_log = logging.getLogger("zbmc.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return text if request_id is None or request_id in text else f"{text} [{request_id}]"


def configure(log_format: str, level: str) -> None:
    """One stderr handler on the root logger; calling again replaces it. uvicorn's loggers
    reach it because ``zbmc serve`` runs uvicorn with ``log_config=None``. When something else
    already put handlers on the root logger (an embedding program, a test runner), logging is
    theirs and is left alone."""
    root = logging.getLogger()
    if any(not isinstance(h, _Handler) for h in root.handlers):
        return
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler installed by ``configure``."""


def log_request(
    request_id: str,
    tenant_id: str | None,
    action: str | None,
    code: str,
    status: int,
    seconds: float,
    *,
    method: str = "POST",
    path: str = "-",
) -> None:
    """One access-log line per request that got a request id: answered by the pipeline, or
    refused before it (unknown path or service, method, size, rate limit)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 3)
    access_log.info(
        "%s %s %s %s %s %.1fms",
        method,
        path,
        action or "-",
        status,
        code,
        duration_ms,
        extra={
            "request_id": request_id,
            "tenant_id": tenant_id,
            "method": method,
            "path": path,
            "action": action,
            "code": code,
            "status": status,
            "duration_ms": duration_ms,
        },
    )
