"""Structured logging: one JSON object per line (or a readable line on a terminal), with the request id."""

from __future__ import annotations

import json
import logging
import sys
import time

from slicebroker.runtime.context import current_request_id


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": current_request_id(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        tail = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line += f" {tail}" if tail else ""
        rid = current_request_id()
        line += f" request_id={rid}" if rid != "-" else ""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", json_format: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_format else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """`logger.info("...", extra=log_fields(grant=gid))` attaches structured fields."""
    return {"fields": fields}
