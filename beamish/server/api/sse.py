"""Server-sent events: the frame encoding, and what a streamed answer's format must provide.

Sans-I/O. A ``StreamWire`` turns the events of one streamed answer into SSE frames; the
transport (``beamish.server.api.calls.StreamingCall``) only sends them. Two wires exist:
beamish's own (``token`` / ``done`` / ``error`` events, in ``sessions.py``) and OpenAI's
``chat.completion.chunk`` stream (in ``openai_compat.py``).

A frame is ``event: <name>`` (optional), then ``data: <compact JSON>``, then a blank line;
compact JSON has no line breaks, so one ``data`` line always suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from beamish.compact_json import dumps
from beamish.llm.hierarchy import ResolvedConfig
from beamish.llm.providers.stream import StreamEvent
from beamish.server.api.errors import ErrorInfo

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Headers of every event stream: no caching, no proxy buffering."""


def sse_frame(data: Any, event: str | None = None) -> bytes:
    """One SSE frame carrying ``data`` as compact JSON (or verbatim, if ``data`` is a str)."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n".encode()


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a wire knows of the answer it frames.

    Attributes:
        request_id: the id the usage is recorded under.
        session_id: the session the call belongs to.
        config: the resolved configuration (with provenance).
        provider: the provider kind serving (a fallback's, if the chain was walked).
        model: the model serving.
    """

    request_id: str
    session_id: str
    config: ResolvedConfig
    provider: str
    model: str


class StreamWire(Protocol):
    """The frames of one streamed answer, in one format."""

    def opening(self, info: StreamInfo) -> bytes:
        """What to send before the first event (may be empty)."""
        ...

    def event(self, info: StreamInfo, event: StreamEvent) -> bytes:
        """The frames of one event; the terminal events also end the stream."""
        ...

    def failure(self, request_id: str, error: ErrorInfo) -> bytes:
        """The frame saying the stream failed after it started."""
        ...


__all__ = ["SSE_HEADERS", "StreamInfo", "StreamWire", "sse_frame"]
