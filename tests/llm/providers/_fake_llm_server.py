"""A real local HTTP server speaking the OpenAI and Anthropic wire formats, scriptable per test.

``FakeLLMServer`` runs a Starlette app under uvicorn on 127.0.0.1 (port chosen by the kernel)
in a thread with its own event loop, so the official SDKs reach it over real HTTP from any
test's loop::

    openai.AsyncOpenAI(base_url=server.openai_url, api_key=server.openai_key)
    anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key=server.anthropic_key)

It serves ``POST {openai_url}/chat/completions`` (JSON, or SSE with the
``stream_options.include_usage`` usage chunk and ``[DONE]``), ``POST {anthropic_url}/v1/messages``
(JSON, or the SSE events message_start, content_block_start/delta/stop, message_delta with
usage, message_stop), ``POST {openai_url}/embeddings`` (each input's vector is its length in
characters, then 1.0, 2.0, ... up to ``dimensions``, 4 by default; float or base64; usage
counts the inputs' words) and both APIs' ``GET .../models``.

By default it answers ``you said: <last user message>``; ``reply`` replaces that: a text, or a
function of the request's body that returns one (called once per request, on the server's
thread). Tokens are words, and usage counts the words of the prompt and of the answer. A
request with another key than the API's gets a 401 whose message quotes the key, as some
real servers do, to prove the key is masked.
``script(*faults)`` queues faults that the next requests of their route (and API, if the
fault names one) consume in order:

* ``Fault.error(429, retry_after="2")`` — answer that HTTP error;
* ``Fault.hang()`` — never answer (until ``reset``), so the client must time out;
* ``Fault.cut(after_tokens=n)`` — stream ``n`` tokens, then drop the connection;
* ``Fault.end_early(after_tokens=n)`` — stream ``n`` tokens, then end cleanly but unfinished;
* ``Fault.stall(after_tokens=n)`` — stream ``n`` tokens, then go quiet (until ``reset``);
* ``Fault.garbage(after_tokens=n, frame=...)`` — stream ``n`` tokens, then a frame that is
  not JSON (or ``frame``, given whole: malformed SSE lines, a chunk of the wrong shape);
* ``Fault.raw(body)`` — answer 200 with ``body`` as it is, streamed request or not (a body
  that is not JSON, JSON of the wrong shape, a stream that is not SSE);
* ``Fault.huge(size)`` — answer 200 with a well-formed answer of ``size`` bytes (streamed: in
  one SSE line);
* ``Fault.error_event(after_tokens=n)`` — stream ``n`` tokens, then the API's in-stream
  error (OpenAI's ``{"error": ...}`` chunk, Anthropic's ``overloaded_error`` event).

``requests`` records what arrived, and over which connection (the client's port). Usable
outside tests too (the benchmark's local server).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Api = Literal["openai", "anthropic"]
RouteName = Literal["generate", "models", "embeddings"]

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
_SAID = "the fake server was told to fail"


@dataclass(frozen=True, slots=True)
class Fault:
    """What the server does to one request instead of answering normally."""

    kind: Literal["error", "hang", "cut", "end_early", "stall", "garbage", "error_event", "raw",
                  "huge"]
    route: RouteName = "generate"
    api: Api | None = None
    status: int = 500
    retry_after: str | None = None
    message: str = _SAID
    after_tokens: int = 0
    body: str = ""
    content_type: str = "application/json"
    size: int = 0

    @classmethod
    def error(cls, status: int, *, retry_after: str | None = None, message: str | None = None,
              route: RouteName = "generate", api: Api | None = None) -> Fault:
        """Answer HTTP ``status`` (with ``Retry-After`` if given), to ``api`` or either."""
        return cls("error", route=route, api=api, status=status, retry_after=retry_after,
                   message=message or f"the fake server answers {status}")

    @classmethod
    def hang(cls, route: RouteName = "generate") -> Fault:
        """Never answer, until the server is reset."""
        return cls("hang", route=route)

    @classmethod
    def cut(cls, after_tokens: int) -> Fault:
        """Stream ``after_tokens`` tokens, then drop the connection."""
        return cls("cut", after_tokens=after_tokens)

    @classmethod
    def end_early(cls, after_tokens: int) -> Fault:
        """Stream ``after_tokens`` tokens, then end the response without finishing."""
        return cls("end_early", after_tokens=after_tokens)

    @classmethod
    def stall(cls, after_tokens: int) -> Fault:
        """Stream ``after_tokens`` tokens, then send nothing more until reset."""
        return cls("stall", after_tokens=after_tokens)

    @classmethod
    def garbage(cls, after_tokens: int, *, frame: str = "") -> Fault:
        """Stream ``after_tokens`` tokens, then a frame whose data is not JSON (or ``frame``)."""
        return cls("garbage", after_tokens=after_tokens, body=frame)

    @classmethod
    def raw(cls, body: str, *, content_type: str = "application/json") -> Fault:
        """Answer 200 with ``body`` (of ``content_type``), whatever was asked."""
        return cls("raw", body=body, content_type=content_type)

    @classmethod
    def huge(cls, size: int) -> Fault:
        """Answer 200 with a well-formed answer of ``size`` bytes."""
        return cls("huge", size=size)

    @classmethod
    def error_event(cls, after_tokens: int, *, message: str | None = None) -> Fault:
        """Stream ``after_tokens`` tokens, then the API's in-stream error (OpenAI's says
        ``message``, if given)."""
        if message is None:
            return cls("error_event", after_tokens=after_tokens)
        return cls("error_event", after_tokens=after_tokens, message=message)


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the server received."""

    api: Api
    route: RouteName
    key: str | None
    body: Mapping[str, Any] = field(default_factory=dict)
    client_port: int | None = None
    """The client's port: requests with the same one came over the same connection."""


class FakeLLMServer:
    """The server; ``start`` and ``stop`` it (or use it as a context manager)."""

    def __init__(self) -> None:
        """A stopped server with default behaviour."""
        self.requests: list[Seen] = []
        self._arrived = threading.Condition()
        self.models: dict[str, int | None] = {}
        self.reply: str | Callable[[Mapping[str, Any]], str] | None = None
        self._faults: deque[Fault] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._port = 0
        self.reset()

    # -- control, from the test's thread ------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI SDK's ``base_url``."""
        return f"{self.url}/openai/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic SDK's ``base_url``."""
        return f"{self.url}/anthropic"

    openai_key = OPENAI_KEY
    anthropic_key = ANTHROPIC_KEY

    def script(self, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests of their routes."""
        self._faults.extend(faults)

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until ``count`` requests have arrived (False if ``timeout`` passed first)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def reset(self) -> None:
        """Forget faults and requests, release hung requests, restore the defaults."""
        self._faults.clear()
        self.requests.clear()
        self.reply = None
        self.models = {"model-a": 8192, "model-b": None}
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release_all)

    def start(self) -> None:
        """Listen on a free port and serve from a background thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted connections inherit this; without it every keep-alive request waits out
        # the client's delayed ACK (~40 ms) before the response body leaves.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening now queues early connections until uvicorn accepts them: no start race.
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), lifespan="off", log_config=None, http="h11",
                                ws="none", access_log=False)
        self._server = _ThreadServer(config)
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, started),
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        started.wait()

    def stop(self) -> None:
        """Release hung requests, stop serving and join the thread."""
        if self._server is None or self._thread is None:
            return
        self.reset()
        self._server.should_exit = True
        self._thread.join()

    def __enter__(self) -> FakeLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the server's thread -------------------------------------------------------------------

    def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        asyncio.run(self._run(sock, started))

    async def _run(self, sock: socket.socket, started: threading.Event) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        started.set()
        await self._server.serve(sockets=[sock])

    def _release_all(self) -> None:
        assert self._release is not None
        self._release.set()
        self._release = asyncio.Event()

    async def _wait_for_release(self) -> None:
        assert self._release is not None
        await self._release.wait()

    def _next_fault(self, api: Api, route: RouteName) -> Fault | None:
        for fault in self._faults:
            if fault.route == route and fault.api in (None, api):
                self._faults.remove(fault)
                return fault
        return None

    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/openai/v1/chat/completions", self._openai_chat, methods=["POST"]),
            Route("/openai/v1/models", self._openai_models, methods=["GET"]),
            Route("/openai/v1/embeddings", self._openai_embeddings, methods=["POST"]),
            Route("/anthropic/v1/messages", self._anthropic_messages, methods=["POST"]),
            Route("/anthropic/v1/models", self._anthropic_models, methods=["GET"]),
        ])

    async def _admit(self, request: Request, api: Api, route: RouteName,
                     ) -> tuple[dict[str, Any], Fault | None, Response | None]:
        body: dict[str, Any] = await request.json() if route != "models" else {}
        key = _presented_key(request)
        with self._arrived:
            self.requests.append(Seen(api=api, route=route, key=key, body=body,
                                      client_port=request.client.port if request.client
                                      else None))
            self._arrived.notify_all()
        expected = self.openai_key if api == "openai" else self.anthropic_key
        if key != expected:
            return body, None, _error(api, 401, f"Incorrect API key provided: {key}")
        fault = self._next_fault(api, route)
        if fault is not None and fault.kind == "hang":
            await self._wait_for_release()
            return body, None, _error(api, 503, "released by reset")
        if fault is not None and fault.kind == "error":
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            return body, None, _error(api, fault.status, fault.message, headers)
        if fault is not None and fault.kind == "raw":
            return body, None, Response(fault.body, media_type=fault.content_type)
        if fault is not None and fault.kind == "huge":
            return body, None, StreamingResponse(
                _endless(fault.size, stream=bool(body.get("stream"))),
                media_type="text/event-stream" if body.get("stream") else "application/json")
        return body, fault, None

    def _answer(self, body: Mapping[str, Any], limit: int | None) -> tuple[list[str], bool]:
        messages = body.get("messages", [])
        said = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        reply = self.reply(body) if callable(self.reply) else self.reply
        words = (reply if reply is not None else f"you said: {said}").split()
        tokens = [w + " " for w in words[:-1]] + words[-1:]
        if limit is not None and len(tokens) > limit:
            return tokens[:limit], True
        return tokens, False

    # -- OpenAI --------------------------------------------------------------------------------

    async def _openai_chat(self, request: Request) -> Response:
        body, fault, refused = await self._admit(request, "openai", "generate")
        if refused is not None:
            return refused
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        tokens, cut_short = self._answer(body, limit)
        usage = {"prompt_tokens": _prompt_words(body), "completion_tokens": len(tokens),
                 "total_tokens": _prompt_words(body) + len(tokens)}
        finish = "length" if cut_short else "stop"
        if not body.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                "model": body["model"], "usage": usage,
                "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                             "message": {"role": "assistant", "content": "".join(tokens)}}]})
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = _openai_events(body["model"], tokens, finish, usage if with_usage else None)
        frame = _OPENAI_ERROR_FRAME
        if fault is not None and fault.kind == "error_event" and fault.message != _SAID:
            frame = _data({"error": {"message": fault.message}})
        return _SSE(events, fault, self._wait_for_release, frame)

    async def _openai_embeddings(self, request: Request) -> Response:
        body, _, refused = await self._admit(request, "openai", "embeddings")
        if refused is not None:
            return refused
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        size = int(body.get("dimensions") or 4)
        data = []
        for index, text in enumerate(inputs):
            vector = [float(len(text)), *(float(i) for i in range(1, size))]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        words = sum(len(text.split()) for text in inputs)
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": words, "total_tokens": words}})

    async def _openai_models(self, request: Request) -> Response:
        _, _, refused = await self._admit(request, "openai", "models")
        if refused is not None:
            return refused
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake",
                 **({"max_model_len": window} if window else {})}
                for name, window in self.models.items()]
        return JSONResponse({"object": "list", "data": data})

    # -- Anthropic -----------------------------------------------------------------------------

    async def _anthropic_messages(self, request: Request) -> Response:
        body, fault, refused = await self._admit(request, "anthropic", "generate")
        if refused is not None:
            return refused
        tokens, cut_short = self._answer(body, body.get("max_tokens"))
        prompt = _prompt_words(body) + len(str(body.get("system", "")).split())
        stop = "max_tokens" if cut_short else "end_turn"
        if not body.get("stream"):
            return JSONResponse({
                "id": "msg_fake", "type": "message", "role": "assistant",
                "model": body["model"], "stop_reason": stop, "stop_sequence": None,
                "content": [{"type": "text", "text": "".join(tokens)}],
                "usage": {"input_tokens": prompt, "output_tokens": len(tokens)}})
        events = _anthropic_events(body["model"], tokens, stop, prompt)
        return _SSE(events, fault, self._wait_for_release, _ANTHROPIC_ERROR_FRAME)

    async def _anthropic_models(self, request: Request) -> Response:
        _, _, refused = await self._admit(request, "anthropic", "models")
        if refused is not None:
            return refused
        data = [{"id": name, "type": "model", "display_name": name.title(),
                 "created_at": "2025-01-01T00:00:00Z", "lifecycle": "active",
                 "max_input_tokens": window} for name, window in self.models.items()]
        ids = [d["id"] for d in data]
        return JSONResponse({"data": data, "has_more": False,
                             "first_id": ids[0] if ids else None,
                             "last_id": ids[-1] if ids else None})


class _ThreadServer(uvicorn.Server):
    """uvicorn, minus signal handling: the test process owns its signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True, slots=True)
class _Event:
    """One SSE frame; ``token`` marks the frames that carry answer text."""

    data: str
    token: bool = False
    terminal: bool = False


class _SSE(Response):
    """A server-sent-event stream that a fault may cut, end early or stall."""

    def __init__(self, events: list[_Event], fault: Fault | None,
                 stall: Callable[[], Awaitable[None]], error_frame: str) -> None:
        super().__init__(media_type="text/event-stream")
        self._events = events
        self._fault = fault
        self._stall = stall
        self._error_frame = error_frame

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"),
                                (b"cache-control", b"no-cache")]})
        async for frame in self._frames():
            await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
        fault = self._fault
        if fault is not None and fault.kind == "cut":
            return  # without the final empty body: uvicorn drops the connection
        if fault is not None and fault.kind == "stall":
            await self._stall()
        last = {"garbage": (fault.body if fault is not None else "") or _GARBAGE_FRAME,
                "error_event": self._error_frame}.get(fault.kind if fault is not None else "",
                                                      "")
        await send({"type": "http.response.body", "body": last.encode(), "more_body": False})

    async def _frames(self) -> AsyncIterator[str]:
        sent = 0
        limit = self._fault.after_tokens if self._fault is not None else None
        for event in self._events:
            if limit is not None and event.token and sent >= limit:
                return
            if limit is not None and event.terminal:
                return
            sent += event.token
            yield event.data


_GARBAGE_FRAME = "event: content_block_delta\ndata: {this is not json\n\n"
_OPENAI_ERROR_FRAME = 'data: {"error": {"message": "the model is overloaded"}}\n\n'
_ANTHROPIC_ERROR_FRAME = ('event: error\ndata: {"type": "error", "error": '
                          '{"type": "overloaded_error", "message": "Overloaded"}}\n\n')


def _openai_events(model: str, tokens: list[str], finish: str,
                   usage: dict[str, int] | None) -> list[_Event]:
    def chunk(delta: dict[str, str], finish_reason: str | None) -> str:
        return _data({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                      "model": model, "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish_reason}]})
    events = [_Event(chunk({"role": "assistant", "content": ""}, None))]
    events += [_Event(chunk({"content": t}, None), token=True) for t in tokens]
    events.append(_Event(chunk({}, finish), terminal=True))
    if usage is not None:
        events.append(_Event(_data({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                    "created": 0, "model": model, "choices": [],
                                    "usage": usage}), terminal=True))
    events.append(_Event("data: [DONE]\n\n", terminal=True))
    return events


def _anthropic_events(model: str, tokens: list[str], stop: str, prompt: int) -> list[_Event]:
    start = {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": 1}}}
    events = [_Event(_named("message_start", start)),
              _Event(_named("content_block_start", {"type": "content_block_start", "index": 0,
                                                    "content_block": {"type": "text",
                                                                      "text": ""}})),
              _Event(_named("ping", {"type": "ping"}))]
    events += [_Event(_named("content_block_delta", {
        "type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": t}}), token=True) for t in tokens]
    events += [
        _Event(_named("content_block_stop", {"type": "content_block_stop", "index": 0}),
               terminal=True),
        _Event(_named("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": stop, "stop_sequence": None},
                                        "usage": {"output_tokens": len(tokens)}}),
               terminal=True),
        _Event(_named("message_stop", {"type": "message_stop"}), terminal=True)]
    return events


async def _endless(size: int, *, stream: bool) -> AsyncIterator[bytes]:
    """A well-formed answer of ``size`` bytes whose text is all ``x``, sent a MiB at a time."""
    head = b'{"id": "chatcmpl-fake", "choices": [{"index": 0, "message": {"content": "'
    tail = b'"}, "finish_reason": "stop"}]}'
    if stream:
        head = b"data: " + head.replace(b'"message"', b'"delta"')
        tail += b"\n\ndata: [DONE]\n\n"
    yield head
    piece = b"x" * (1 << 20)
    for _ in range(max(size - len(head), 0) // len(piece) + 1):
        yield piece
    yield tail


def _data(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _named(event: str, payload: Mapping[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n"


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[len("bearer "):]
    return request.headers.get("x-api-key")


def _prompt_words(body: Mapping[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))


def _error(api: Api, status: int, message: str,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    if api == "openai":
        payload: dict[str, Any] = {"error": {"message": message, "type": "fake_error",
                                             "param": None, "code": str(status)}}
    else:
        kind = {401: "authentication_error", 429: "rate_limit_error",
                529: "overloaded_error"}.get(status, "api_error" if status >= 500
                                              else "invalid_request_error")
        payload = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(payload, status_code=status, headers=dict(headers or {}))
