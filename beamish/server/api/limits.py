"""Bounds on what one request body may hold, enforced before any endpoint reads it.

A body is refused before it costs memory, storage or a provider call:

* **bytes** (``max_body_bytes``): a ``Content-Length`` over the limit is answered 413 at
  once, unread; a body streamed without one is counted as it arrives, and answered 413 as
  soon as it passes the limit (the rest is never read);
* **JSON shape**, for a JSON body (``BodyLimits.problem``, sans-I/O): nesting deeper than
  ``max_json_depth``, a string longer than ``max_string_chars`` (a message's content, a
  model name), an array longer than ``max_array_items`` (the messages of a call), and a
  lone surrogate anywhere (``"\\ud800"`` is valid JSON but not Unicode: it cannot be stored,
  logged or answered) are a 422 naming the field (``body.messages.0.content``).

A free-form object that is stored and returned on every read (a provider config's
``metadata``) is also bounded in bytes of its JSON (``max_metadata_bytes``) by the endpoint
that stores it (``check_stored_json``).

JSON that does not parse is left to FastAPI, which answers its own 422 ``json_invalid``; the
middleware only answers what it alone can see. It covers the API's paths (``/api/``,
``/v1/``), not a host app's own routes. The limits are ``[server]`` settings, read from the
running ``Application`` for each request (``ServerSettings`` defaults without one).

The check parses a JSON body once more than the endpoint does: C-speed, and the only way
to see nesting and surrogates before pydantic, the store and the log encoder meet them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from beamish.server.api.errors import ErrorInfo, error_response, validation_info
from beamish.settings import ServerSettings

API_PREFIXES = ("/api/", "/v1/")
"""The paths the limits apply to: the API's own, not a host app's other routes."""

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with a body, and where (``loc`` as in a validation error)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The bounds of one request body; see the module docstring."""

    max_body_bytes: int
    max_json_depth: int
    max_string_chars: int
    max_array_items: int

    @classmethod
    def of(cls, settings: ServerSettings) -> BodyLimits:
        """The limits the ``[server]`` settings give."""
        return cls(settings.max_body_bytes, settings.max_json_depth,
                   settings.max_string_chars, settings.max_array_items)

    def too_large(self, size: int) -> str | None:
        """Why a body of ``size`` bytes is refused, or None."""
        if size <= self.max_body_bytes:
            return None
        return (f"the request body is larger than {self.max_body_bytes} bytes "
                "(server.max_body_bytes); send less")

    def problem(self, document: Any) -> Problem | None:
        """The first bound a parsed JSON body breaks, or None (iterative: no recursion)."""
        stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ("body",))]
        while stack:
            value, loc = stack.pop()
            if len(loc) - 1 > self.max_json_depth:
                return Problem(loc, f"nested deeper than {self.max_json_depth} levels "
                               "(server.max_json_depth)", "too_deep")
            if isinstance(value, str):
                found = self._string_problem(value, loc)
            elif isinstance(value, dict):
                found = self._keys_problem(value, loc)
                stack.extend((item, (*loc, key)) for key, item in value.items())
            elif isinstance(value, list):
                found = None if len(value) <= self.max_array_items else Problem(
                    loc, f"more than {self.max_array_items} items "
                    "(server.max_array_items)", "too_long")
                stack.extend((item, (*loc, index)) for index, item in enumerate(value))
            else:
                found = None
            if found is not None:
                return found
        return None

    def _string_problem(self, text: str, loc: tuple[str | int, ...]) -> Problem | None:
        if len(text) > self.max_string_chars:
            return Problem(loc, f"longer than {self.max_string_chars} characters "
                           "(server.max_string_chars)", "too_long")
        if not text.isascii() and _SURROGATE.search(text):
            return Problem(loc, "holds a lone surrogate (\\ud800-\\udfff), which is not "
                           "valid Unicode; encode the text as UTF-8", "invalid_unicode")
        return None

    def _keys_problem(self, value: dict[str, Any], loc: tuple[str | int, ...]) -> Problem | None:
        for key in value:
            found = self._string_problem(key, loc)
            if found is not None:
                return Problem(loc, "a key " + found.msg, found.type)
        return None


def problem_of_json(body: bytes, limits: BodyLimits) -> Problem | None:
    """The bound a JSON ``body`` breaks, or None (also when it does not parse: FastAPI's 422)."""
    try:
        document = json.loads(body)
    except RecursionError:
        return Problem(("body",), f"nested deeper than {limits.max_json_depth} levels "
                       "(server.max_json_depth)", "too_deep")
    except ValueError:
        return None
    return limits.problem(document)


def check_stored_json(field: str, value: object, max_bytes: int) -> None:
    """Refuse a free-form object that would be stored and returned on every read when its
    compact JSON is over ``max_bytes`` (``server.max_metadata_bytes``).

    Raises:
        RequestValidationError: a 422 naming ``body.<field>``.
    """
    if value is None:
        return
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise RequestValidationError([{
            "loc": ("body", field), "type": "too_large",
            "msg": f"its JSON is {size} bytes, over {max_bytes} (server.max_metadata_bytes)"}])


class BodyLimitMiddleware:
    """The ASGI middleware that enforces ``BodyLimits`` on the API's paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        limits = _limits(scope)
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        refusal = None if declared is None else limits.too_large(declared)
        body = b""
        if refusal is None:
            read, refusal = await _read_body(receive, limits)
            if read is None:  # the client went away before sending it all: nothing to serve
                return
            body = read
        if refusal is not None:
            await error_response(ErrorInfo(413, "request_too_large", refusal))(
                scope, receive, send)
            return
        if body and _is_json(headers):
            problem = problem_of_json(body, limits)
            if problem is not None:
                info = validation_info([{"loc": problem.loc, "msg": problem.msg,
                                         "type": problem.type}])
                await error_response(info)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


def _limits(scope: Scope) -> BodyLimits:
    app = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "beamish", None)
    settings = getattr(getattr(runtime, "settings", None), "server", None)
    return BodyLimits.of(settings if isinstance(settings, ServerSettings) else ServerSettings())


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


def _is_json(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind in ("", "application/json") or kind.endswith("+json")


async def _read_body(receive: Receive, limits: BodyLimits) -> tuple[bytes | None, str | None]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, None
        chunk = message.get("body", b"")
        size += len(chunk)
        refusal = limits.too_large(size)
        if refusal is not None:
            return b"", refusal
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    messages: Iterator[Message] = iter([{"type": "http.request", "body": body,
                                         "more_body": False}])

    async def replayed() -> Message:
        for message in messages:
            return message
        return await receive()  # after the body: disconnects, as the server reports them

    return replayed


__all__ = ["API_PREFIXES", "BodyLimitMiddleware", "BodyLimits", "Problem", "check_stored_json",
           "problem_of_json"]
