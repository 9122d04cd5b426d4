"""One access line per HTTP request, and its count in ``/metrics``: ``AccessObserver``.

An ASGI middleware around the API app. When a request has been answered it writes one
record on the ``beamish.server.access`` logger — INFO, ERROR for a 5xx; under ``beamish
serve``, the same line through ``beamish.request_log.line_writer()`` without making the
record — whose message reads ``GET /api/sessions?user_id=ada 200 3ms`` and whose fields
(``extra``, flat in JSON logs) are ``method``, ``path`` (with its query string),
``status``, ``duration_ms``, ``client`` and ``user_id`` (the authenticated caller, or None).
It replaces uvicorn's access log, which ``beamish serve`` turns off.

No secret reaches the line: the value of every query parameter whose name looks like a
credential (``token``, ``access_token``, ``api_key``, ``key``, ``secret``, ``password``,
``authorization``...) is written as ``***``; headers are never logged.

WebSocket upgrades are served before this middleware (``SocketEndpoint.serve_first``) and
logged by the channels as they connect.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beamish.llm.scrub import scrub
from beamish.request_log import line_writer
from beamish.server.api.deps import USER_SCOPE_KEY
from beamish.server.metrics import ServerMetrics

LOGGER_NAME: Final = "beamish.server.access"

UNMATCHED: Final = "<unmatched>"

log = logging.getLogger(LOGGER_NAME)

_SECRET_PARAM: Final = re.compile(
    r"(?i)((?:^|&)[^=&]*(?:token|key|secret|password|passwd|authorization|auth|signature|sig)"
    r"[^=&]*=)[^&]*")


def mask_query(query: str) -> str:
    """``query`` with the value of every credential-like parameter replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1***", query) if query else query


class AccessObserver:
    """Counts and logs every HTTP request that ``app`` answers (see the module docstring).

    Args:
        app: the app observed.
        metrics: where requests are counted (None: only logged).
    """

    __slots__ = ("_app", "_metrics")

    def __init__(self, app: ASGIApp, metrics: ServerMetrics | None) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception, or a client gone before it
        observed = False

        async def send_observed(message: Message) -> None:
            nonlocal status, observed
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body" and not message.get("more_body", False):
                # Counted before the client can see the answer end: a client that reads
                # /metrics next finds this request in it.
                observed = True
                self._observed(scope, status, time.perf_counter() - started)
            await send(message)

        try:
            await self._app(scope, receive, send_observed)
        finally:
            if not observed:
                self._observed(scope, status, time.perf_counter() - started)

    def _observed(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"]
        if self._metrics is not None:
            self._metrics.observe_http(template, method, status, seconds)
        level = logging.ERROR if status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            _log_line(scope, level, method, status, seconds)


def _log_line(scope: Scope, level: int, method: str, status: int, seconds: float) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("path", "")
    if query:
        path = f"{path}?{mask_query(query)}"
    client = scope.get("client")
    duration_ms = round(seconds * 1000, 1)
    fields: dict[str, object] = {
        "method": method, "path": path, "status": status, "duration_ms": duration_ms,
        "client": None if client is None else client[0],
        "user_id": scope.get(USER_SCOPE_KEY)}
    writer = line_writer()
    if writer is None:
        log.log(level, "%s %s %d %sms", method, path, status, duration_ms, extra=fields)
        return
    # Written as beamish serve's formatters would write the record, scrubbed as they scrub
    # it (the path is the only text a client chose), without the record's cost.
    fields["path"] = path = scrub(path)
    writer.write_record(LOGGER_NAME, level, f"{method} {path} {status} {duration_ms}ms", fields)


__all__ = ["LOGGER_NAME", "USER_SCOPE_KEY", "AccessObserver", "mask_query"]
