"""A bound on how many bytes one answer of a provider may have; the SDKs have none.

Both SDKs read a whole answer into memory (and a stream's events line by line, however long
the line), so an upstream that answers without end — a runaway stream, a body of hundreds of
megabytes, one SSE line that never ends — would hold a process's memory until the call's
timeout, which a steady trickle never reaches. ``bounded_http_client`` gives an SDK an HTTP
client whose answers stop at ``MAX_ANSWER_BYTES``: reading past it raises
``AnswerTooLargeError``, which the SDK reports as a connection error caused by it, and the
provider turns into ``ProviderUnavailableError`` ("answered more than ...").

``MAX_ANSWER_BYTES`` is far above any real answer: the longest outputs models give (about
128k tokens) take under half of it as OpenAI's streamed chunks, which carry some 200 bytes of
JSON per token. Bytes are counted as they arrive (compressed, if the upstream compressed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2

MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The most bytes one answer may have."""


class AnswerTooLargeError(ValueError):
    """The answer went past the bound; the message says which."""


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for piece in self._inner:
            seen += len(piece)
            if seen > self._limit:
                raise AnswerTooLargeError(f"the answer is longer than {self._limit} bytes")
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


class _BoundedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)  # what an async transport returns
        response.stream = _BoundedStream(stream, self._limit)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded_http_client(limits: httpx2.Limits, timeout: Any,
                        limit: int = MAX_ANSWER_BYTES) -> httpx2.AsyncClient:
    """An ``AsyncClient`` as the SDKs make by default (``limits``, ``timeout``, following
    redirects) whose answers stop at ``limit`` bytes."""
    transport = _BoundedTransport(httpx2.AsyncHTTPTransport(limits=limits), limit)
    return httpx2.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True)
