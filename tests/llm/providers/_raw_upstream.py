"""A raw HTTP/1.1 upstream on the test's own loop: scripted answers, byte for byte.

``RawUpstream`` listens on 127.0.0.1 (a free port), reads each request (head, then a
``Content-Length`` body) and answers with the next scripted ``Answer``: bytes written as they
are, then the connection kept, closed, or held open (``hold``, released by ``release``).
Unscripted requests get a well-formed chat completion. It counts the connections it accepted
and records the requests, so tests can see keep-alive at work and what was sent::

    async with RawUpstream() as upstream:
        upstream.script(Answer(b"HTTP/1.1 200 OK\\r\\n..."))
        provider = OpenAIWireProvider("raw", base_url=upstream.url, api_key=None)
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Literal

After = Literal["keep", "close", "hold"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the upstream does with one request: ``raw`` bytes, then ``after``."""

    raw: bytes
    after: After = "keep"


def completion(text: str = "hi", *, headers: str = "") -> bytes:
    """A chat completion answered with ``Content-Length`` (and ``headers``, CRLF-ended)."""
    body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def chunked(*pieces: bytes, head: str = "Content-Type: text/event-stream\r\n") -> bytes:
    """A 200 answer whose body is ``pieces``, each one chunk."""
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    return f"HTTP/1.1 200 OK\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode() + body


class RawUpstream:
    """The server; use it as an async context manager."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """A server not yet listening; ``tls`` makes it HTTPS."""
        self._tls = tls
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.received = asyncio.Event()
        """Set when a request has arrived."""
        self._answers: deque[Answer] = deque()
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The base URL, ending in ``/v1``."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{port}/v1"

    def script(self, *answers: Answer) -> None:
        """Queue ``answers`` for the next requests, in order."""
        self._answers.extend(answers)

    def release(self) -> None:
        """Let held answers go on (their connections close)."""
        self._release.set()

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self.release()
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while await self._answer_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer_one(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        self.received.set()
        answer = self._answers.popleft() if self._answers else Answer(completion())
        writer.write(answer.raw)
        await writer.drain()
        if answer.after == "hold":
            await self._release.wait()
            return False
        return answer.after == "keep"
