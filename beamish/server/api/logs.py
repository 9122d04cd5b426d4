"""One structured JSON log line per LLM request, from the HTTP API and the channels.

Every call of ``POST /api/sessions/{id}/completions`` and ``POST /v1/chat/completions``,
and every ``message`` of a conversation channel, streamed or not, answered or failed, ends
with one INFO record on the ``beamish.server.llm_requests`` logger whose message is a
single JSON object::

    {"event": "llm_request", "request_id": "5f0c...", "user_id": "ada",
     "session_id": "s1", "endpoint": "openai", "stream": true, "task_type": "chat",
     "provider": "echo", "model": "echo-1", "latency_ms": 3, "prompt_tokens": 4,
     "completion_tokens": 6, "outcome": "ok", "error": null}

``outcome`` is ``ok``, ``error`` (``error`` names the exception class) or ``cancelled`` (the
client went away). The same fields are on the record as ``record.llm_request`` (a dict) for
handlers that format records themselves. Only these fields are ever written: no message
content, no token, no API key — error *messages* are left out too, since a provider's can
quote what it was sent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Final, Literal

LOGGER_NAME = "beamish.server.llm_requests"

log = logging.getLogger(LOGGER_NAME)

Outcome = Literal["ok", "error", "cancelled"]
"""How an LLM request ended, as the log says."""

Endpoint = Literal["sessions", "openai", "channel"]
"""Which API the request came through (``channel``: a conversation channel's message)."""


@dataclass(frozen=True, slots=True)
class LLMRequestLog:
    """The fields of one log line (see the module docstring)."""

    request_id: str
    user_id: str
    session_id: str
    endpoint: Endpoint
    stream: bool
    task_type: str
    provider: str | None
    model: str | None
    latency_ms: int
    prompt_tokens: int
    completion_tokens: int
    outcome: Outcome
    error: str | None = None

    def fields(self) -> dict[str, object]:
        """The fields as a dict (``record.llm_request``); flat values, so no deep copy."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    def to_json(self) -> str:
        """The log line: a compact JSON object, ``event`` first."""
        return _line({"event": "llm_request", **self.fields()})


_FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(LLMRequestLog))


def elapsed_ms(started: float) -> int:
    """Whole milliseconds since ``started`` (a ``time.monotonic()`` reading)."""
    return max(0, int((time.monotonic() - started) * 1000))


def llm_requests_logged() -> bool:
    """Whether ``log_llm_request`` writes anything: callers on a hot path check it before
    building their ``LLMRequestLog``."""
    return log.isEnabledFor(logging.INFO)


def log_llm_request(entry: LLMRequestLog) -> None:
    """Write ``entry`` as one INFO line on ``beamish.server.llm_requests``."""
    if not log.isEnabledFor(logging.INFO):
        return  # nobody reads it: skip the JSON (a chat round trip is ~0.3 ms in all)
    fields = entry.fields()
    log.info(_line({"event": "llm_request", **fields}), extra={"llm_request": fields})


_line = json.JSONEncoder(separators=(",", ":")).encode


__all__ = ["LOGGER_NAME", "Endpoint", "LLMRequestLog", "Outcome", "elapsed_ms",
           "llm_requests_logged", "log_llm_request"]
