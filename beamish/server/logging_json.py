"""Log records as JSON lines (``beamish serve --log-format json``, ``[server] log_format``).

Every record becomes one JSON object on one line::

    {"time": "2026-12-07T05:18:00.123Z", "level": "INFO", "logger": "beamish.server.access",
     "message": "GET /health 200 1ms", "method": "GET", "path": "/health", "status": 200,
     "duration_ms": 1, "client": "127.0.0.1", "user_id": null}

``time`` is UTC with milliseconds; ``message`` is the formatted message; every ``extra=``
field of the record follows, under its own name (values JSON cannot hold are written as their
``repr``); ``exception`` carries the traceback when there is one. A record of the LLM request
log (``beamish.request_log``, when it is written as records) gives its entry's fields flat,
with ``message`` ``llm_request``, exactly as ``beamish serve``'s own request lines; a job
event's record (``beamish.jobs.event_log``) gives its fields flat too, with ``message`` the
event's name (``job_completed``)::

    {"time": "…", "level": "INFO", "logger": "beamish.jobs", "message": "job_completed",
     "job_id": 7, "output_id": "0f3c…", "user_id": "ada", "attempt": 1, "latency_ms": 41, …}
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from beamish.compact_json import dumps

#: The attributes every ``LogRecord`` has: anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return repr(value)


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        message = record.getMessage()
        entry = getattr(record, "llm_request", None)
        job_event = getattr(record, "job_event", None)
        line: dict[str, Any] = {"time": self.formatTime(record), "level": record.levelname,
                                "logger": record.name}
        if isinstance(entry, dict):
            line["message"] = "llm_request"
            line.update(entry)
        elif isinstance(job_event, dict):
            line["message"] = job_event.get("event", message)
            line.update((key, _jsonable(value)) for key, value in job_event.items()
                        if key != "event" and key not in line)
        else:
            line["message"] = message
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRIBUTES and key not in line:
                    line[key] = _jsonable(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return dumps(line)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC, with milliseconds: ``2026-12-07T05:18:00.123Z``."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


__all__ = ["JsonFormatter"]
