"""One structured JSON log line per LLM request, from the HTTP API and the chat channel.

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

The logger keeps the name it had when this module lived in the HTTP API,
``beamish.server.llm_requests``: log configurations and the ``[server] request_log`` option
name it. The module sits below the API and the chat product, which both write these lines.

A failed request's line (``outcome`` ``error``) is a WARNING. ``beamish serve`` writes these
lines without making records (``RequestLineWriter``, installed by ``configure_serving_logs``):
the same text its log format would give the record — or, with ``--log-format json``, one JSON
object with the record's keys (``time``, ``level``, ``logger``, ``message``) and the entry's —
for a fraction of the cost; a chat server writes one per message.

``observe_llm_requests(f)`` hands every entry to ``f`` as well, whether the lines are written
or not: ``beamish serve``'s ``/metrics`` counts requests, tokens and latency this way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Final, Literal, NamedTuple, Protocol

from beamish.compact_json import dumps

LOGGER_NAME = "beamish.server.llm_requests"

log = logging.getLogger(LOGGER_NAME)

Outcome = Literal["ok", "error", "cancelled"]
"""How an LLM request ended, as the log says."""

Endpoint = Literal["sessions", "openai", "channel"]
"""Which API the request came through (``channel``: a conversation channel's message)."""


class LLMRequestLog(NamedTuple):
    """The fields of one log line (see the module docstring).

    A named tuple: one is made for every chat message, and it is made in a third of a
    frozen dataclass's time.
    """

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
        return dict(zip(self._fields, self, strict=True))

    def to_json(self) -> str:
        """The log line: a compact JSON object, ``event`` first."""
        return dumps(dict(zip(_LINE_KEYS, (_EVENT, *self), strict=True)))


_EVENT: Final = "llm_request"
_LINE_KEYS: Final = ("event", *LLMRequestLog._fields)


def elapsed_ms(started: float) -> int:
    """Whole milliseconds since ``started`` (a ``time.monotonic()`` reading)."""
    return max(0, int((time.monotonic() - started) * 1000))


RequestObserver = Callable[[LLMRequestLog], object]
"""Called with every entry ``log_llm_request`` is given (``beamish serve``'s metrics)."""

_observers: list[RequestObserver] = []


def observe_llm_requests(observer: RequestObserver) -> Callable[[], None]:
    """Call ``observer`` with every entry from now on, whether or not the log is written;
    return the function that stops it. It runs on the caller's hot path: keep it O(1)."""
    _observers.append(observer)

    def stop() -> None:
        with contextlib.suppress(ValueError):
            _observers.remove(observer)

    return stop


def llm_requests_logged() -> bool:
    """Whether ``log_llm_request`` does anything (writes the line, or an observer reads the
    entry): callers on a hot path check it before building their ``LLMRequestLog``."""
    return bool(_observers) or log.isEnabledFor(logging.INFO)


def log_llm_request(entry: LLMRequestLog) -> None:
    """Write ``entry`` as one line on ``beamish.server.llm_requests`` — INFO, WARNING when
    its outcome is ``error`` — through the ``RequestLineWriter`` if one is installed, else as
    a record; and hand it to the observers."""
    for observer in _observers:
        observer(entry)
    level = logging.WARNING if entry.outcome == "error" else logging.INFO
    if not log.isEnabledFor(level):
        return  # nobody reads it: skip building the JSON line
    line = entry.to_json()
    if _writer is not None:
        _writer.write(line, level)
    else:
        log.log(level, line, extra={"llm_request": entry.fields()})


class TextStream(Protocol):
    """Where log lines go: a text stream, such as ``sys.stderr``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class RequestLineWriter:
    """Writes the request log's lines to a stream itself, as the logging of ``beamish serve``
    formats them (``asctime levelname name message``), and a turn of the event loop's lines
    in one write; the access log's lines too (``write_record``), one per HTTP request.

    Through ``logging``, a line costs a sizeable share of a chat round trip's CPU: the record,
    the handler's lock, formatting its time, a write and a flush for each. This writes the
    same text for a small part of that (``bench/RESULTS.md``). ``configure_serving_logs`` installs
    one (``write_request_lines``); without it — in an application embedding beamish — each
    line is an ordinary record, which that application's handlers see.

    The logger's level still decides: set ``beamish.server.llm_requests`` above INFO to
    silence the lines. A line waits at most for the next turn of the event loop that wrote
    it, so it follows the other log lines written in the same turn. Written from a thread
    with no event loop, it goes at once, with what waited; what waits at exit is written
    then. A loop that ends before its turn comes leaves its lines to the next write.
    """

    __slots__ = ("_json", "_lock", "_loop", "_pending", "_second", "_stamp", "_stream",
                 "_thread")

    def __init__(self, stream: TextStream, *, json: bool = False) -> None:
        self._stream = stream
        self._json = json  # as beamish.server.logging_json formats records
        self._lock = threading.Lock()  # for lines from threads (sync endpoints), rare
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # where a flush is scheduled
        self._thread = 0  # the thread running _loop
        self._second = -1
        self._stamp = ""  # the time of _second, as the format writes it

    def write(self, message: str, level: int = logging.INFO) -> None:
        """Queue ``message`` (a compact JSON object) as a line of the request log."""
        stamp, millis = self._time()
        name = logging.getLevelName(level)
        if self._json:  # the record's keys, then the entry's: one flat JSON object
            line = (f'{{"time":"{stamp}.{millis:03d}Z","level":"{name}",'
                    f'"logger":"{LOGGER_NAME}","message":"{_EVENT}",{message[1:]}\n')
        else:
            line = f"{stamp},{millis:03d} {name} {LOGGER_NAME} {message}\n"
        self._queue(line)

    def write_record(self, logger: str, level: int, message: str,
                     fields: dict[str, object]) -> None:
        """Queue the line a record of ``logger`` with ``message`` and ``extra=fields`` would
        give (``beamish.server.access``'s lines); ``fields`` show only in JSON lines."""
        stamp, millis = self._time()
        name = logging.getLevelName(level)
        if self._json:
            head = {"time": f"{stamp}.{millis:03d}Z", "level": name, "logger": logger,
                    "message": message}
            line = dumps(head | {k: v for k, v in fields.items() if k not in head}) + "\n"
        else:
            line = f"{stamp},{millis:03d} {name} {logger} {message}\n"
        self._queue(line)

    def _time(self) -> tuple[str, int]:
        # Whole nanoseconds, as a record's time since Python 3.13: the same milliseconds.
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._second = second
            self._stamp = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) if self._json
                           else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        return self._stamp, nanos // 1_000_000

    def _queue(self, line: str) -> None:
        thread = threading.get_ident()
        with self._lock:
            self._pending.append(line)
            due = self._loop
            if due is not None and self._thread == thread and due.is_running():
                return  # this thread's running loop has a flush due (see below)
        # Asked only now: on Python 3.11 asking for the running loop is a system call (getpid).
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread
            self.flush()
            return
        with self._lock:
            if loop is self._loop:
                return
            self._loop, self._thread = loop, thread
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what waits."""
        with self._lock:
            lines, self._pending, self._loop = self._pending, [], None
        if not lines:
            return
        try:
            self._stream.write("".join(lines))
            self._stream.flush()
        except (OSError, ValueError):  # as logging's handlers do: say so, and go on serving
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.stderr)


_writer: RequestLineWriter | None = None


def line_writer() -> RequestLineWriter | None:
    """The writer installed by ``write_request_lines``, if any: other per-request lines
    (``beamish.server.access``) go through it too."""
    return _writer


def write_request_lines(stream: TextStream | None, *, json: bool = False) -> None:
    """Write the request log's lines to ``stream`` with a ``RequestLineWriter`` from now on
    (as JSON log lines with ``json``); None goes back to logging records."""
    global _writer
    previous, _writer = _writer, None if stream is None else RequestLineWriter(stream, json=json)
    if previous is not None:
        previous.flush()
        atexit.unregister(previous.flush)
    if _writer is not None:
        atexit.register(_writer.flush)


__all__ = ["LOGGER_NAME", "Endpoint", "LLMRequestLog", "Outcome", "RequestLineWriter",
           "RequestObserver", "TextStream", "elapsed_ms", "llm_requests_logged",
           "line_writer", "log_llm_request", "observe_llm_requests", "write_request_lines"]
