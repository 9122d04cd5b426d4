"""The fake upstream of ``python -m bench gateway``: an OpenAI-compatible server in its own process.

Raw asyncio (one ``asyncio.Protocol`` per connection, a minimal HTTP/1.1 keep-alive parser,
no framework), so that it answers in well under a millisecond and the gateway, not the
upstream, is what the benchmark measures. It speaks the chat completions wire format as the
official ``openai`` SDK reads it:

* ``POST /v1/chat/completions`` — a ``chat.completion`` with ``usage``; with ``"stream":
  true``, ``text/event-stream`` in HTTP/1.1 chunked encoding: a role chunk, one
  ``chat.completion.chunk`` per content token, a chunk with ``finish_reason: "stop"``, with
  ``stream_options.include_usage`` a chunk with empty ``choices`` and the ``usage`` (every
  earlier chunk then carries ``"usage": null``), then ``data: [DONE]``.
* ``GET /v1/models`` — a ``list`` of the models below.

**The model name decides the answer** (the bench picks it; the upstream needs no state):
``[paced-<R>tps-]chunks-<N>`` answers ``N`` content tokens (``tok``, ``tok``, ...; usage
counts ``N`` completion tokens and the prompt's words), and with ``paced-<R>tps-`` a stream
sends one token every ``1/R`` s, each in its own write, as a model generating at ``R``
tokens/s would (the first token after ``1/R`` s too). Any other name answers
``DEFAULT_CHUNKS`` tokens at once. An unpaced stream is written in one piece.

A request the parser cannot read gets a 400 and the connection is closed; an unknown path a
404. Bodies are bounded by ``MAX_BODY_BYTES`` (413 beyond).

Run it with :class:`UpstreamProcess` (a ``multiprocessing`` spawn child; ``port`` is the
port it listens on, on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from bench._child import ChildProcess

DEFAULT_CHUNKS = 20
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
TOKEN = "tok "
MODELS = ("chunks-20", "paced-50tps-chunks-50")
_MODEL = re.compile(r"(?:paced-(\d+)tps-)?chunks-(\d+)")
MAX_CHUNKS = 100_000


@dataclass(frozen=True, slots=True)
class Answer:
    """What a model name asks for: ``chunks`` tokens, one every ``interval`` s (0: at once)."""

    chunks: int
    interval: float

    @classmethod
    def of(cls, model: str) -> Answer:
        found = _MODEL.fullmatch(model)
        if found is None:
            return cls(DEFAULT_CHUNKS, 0.0)
        rate = int(found[1]) if found[1] else 0
        return cls(min(int(found[2]), MAX_CHUNKS), 1.0 / rate if rate > 0 else 0.0)


def _prompt_tokens(body: dict[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
    return words


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\ncontent-type: " + content_type
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _error(status: str, message: str) -> bytes:
    return _response(status, orjson.dumps({"error": {
        "message": message, "type": "invalid_request_error", "param": None, "code": None}}))


_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
_LAST_CHUNK = b"0\r\n\r\n"


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class _Completion:
    """The frames of one answer: the non-streaming body, or the stream's SSE events."""

    def __init__(self, body: dict[str, Any], answer: Answer) -> None:
        self.model = str(body.get("model", ""))
        self.answer = answer
        self.prompt_tokens = _prompt_tokens(body)
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        self.id = f"chatcmpl-bench{time.monotonic_ns()}"
        self.created = int(time.time())

    def usage(self) -> dict[str, int]:
        completion = self.answer.chunks
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    def whole(self) -> bytes:
        return _response("200 OK", orjson.dumps({
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant",
                                                 "content": TOKEN * self.answer.chunks},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": self.usage()}))

    def _event(self, delta: dict[str, str], finish: str | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def opening(self) -> bytes:
        return self._event({"role": "assistant", "content": ""}, None)

    def token(self) -> bytes:
        return self._event({"content": TOKEN}, None)

    def ending(self) -> bytes:
        frames = [self._event({}, "stop")]
        if self.include_usage:
            frames.append(b"data: " + orjson.dumps({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": [],
                "usage": self.usage()}) + b"\n\n")
        frames.append(b"data: [DONE]\n\n")
        return b"".join(frames)


def _models() -> bytes:
    return _response("200 OK", orjson.dumps({"object": "list", "data": [
        {"id": model, "object": "model", "created": 0, "owned_by": "bench"}
        for model in MODELS]}))


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: requests answered in order, a paced stream at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.streaming = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.streaming:
            self._serve()

    def _serve(self) -> None:
        while self.transport is not None and not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._refuse("400 Bad Request", "request head too large")
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            parts = head[0].split(" ")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip()) if value.strip().isdigit() else -1
            if len(parts) != 3 or length < 0:
                self._refuse("400 Bad Request", "cannot read the request line or its length")
                return
            if length > MAX_BODY_BYTES:
                self._refuse("413 Payload Too Large", f"body over {MAX_BODY_BYTES} bytes")
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self._answer(parts[0], parts[1], body)

    def _refuse(self, status: str, message: str) -> None:
        assert self.transport is not None
        self.transport.write(_error(status, message))
        self.transport.close()
        self.transport = None

    def _answer(self, method: str, path: str, raw: bytes) -> None:
        assert self.transport is not None
        if method == "GET" and path == "/v1/models":
            self.transport.write(_models())
            return
        if method != "POST" or path != "/v1/chat/completions":
            self.transport.write(_error("404 Not Found", f"no route {method} {path}"))
            return
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.transport.write(_error("400 Bad Request", "the body is not JSON"))
            return
        if not isinstance(body, dict):
            self.transport.write(_error("400 Bad Request", "the body is not a JSON object"))
            return
        completion = _Completion(body, Answer.of(str(body.get("model", ""))))
        if body.get("stream") is not True:
            self.transport.write(completion.whole())
        elif completion.answer.interval == 0:
            events = [completion.opening(), completion.token() * completion.answer.chunks,
                      completion.ending()]
            self.transport.write(_STREAM_HEAD + _http_chunk(b"".join(events)) + _LAST_CHUNK)
        else:
            self.streaming = True
            self.transport.write(_STREAM_HEAD + _http_chunk(completion.opening()))
            start = self.loop.time()
            self.loop.call_at(start + completion.answer.interval, self._paced, completion,
                              start, 1)

    def _paced(self, completion: _Completion, start: float, n: int) -> None:
        """Send token ``n`` of a paced stream, due ``n`` intervals after ``start``."""
        if self.transport is None:
            return
        frame = completion.token()
        if n < completion.answer.chunks:
            self.transport.write(_http_chunk(frame))
            self.loop.call_at(start + (n + 1) * completion.answer.interval, self._paced,
                              completion, start, n + 1)
            return
        self.transport.write(_http_chunk(frame + completion.ending()) + _LAST_CHUNK)
        self.streaming = False
        if self.buffer:
            self._serve()


async def _serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", 0, backlog=4096)
    pipe.send(server.sockets[0].getsockname()[1])
    await asyncio.to_thread(pipe.recv)  # anything: stop
    server.close()


def _main(pipe: Connection) -> None:
    asyncio.run(_serve(pipe))


class UpstreamProcess(ChildProcess):
    """The fake upstream in a spawned child process, listening on 127.0.0.1:``port``."""

    def __init__(self) -> None:
        super().__init__(_main)
        self.port: int = self.receive()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"
