"""A minimal HTTP/1.1 client on asyncio: one origin, a bounded keep-alive pool, one write a call.

``HTTPClient(base_url)`` talks to the one server of a provider's base URL, ``http`` or
``https`` (TLS from ``ssl.create_default_context()``: the system's trust store, or
``SSL_CERT_FILE``). ``open(payload, timeout_s)`` sends a request the caller encoded whole —
head and body in one write, so one ``send`` system call — and returns the ``Connection`` once
the answer's head has arrived; the caller reads the body (``read``, or ``next_piece`` for a
stream) and hands the connection back (``release``), which keeps it for the next call if the
answer was read to its end and the server allows it (keep-alive).

Answers are parsed by ``httptools`` (llhttp, the parser of Node.js): ``Content-Length``,
chunked and close-delimited bodies; ``1xx`` interim answers are skipped. No compression is
asked for (``Accept-Encoding: identity``); an answer that is compressed all the same is a
``WireProtocolError``. It speaks no HTTP/2, follows no redirects and uses no proxies.

Bounds, all per call and as the SDK's httpx client has them:

- ``timeout_s`` bounds each wait on its own: for a slot in the pool, for the connection
  (TCP and TLS), and for each piece of the answer (a stream may run as long as pieces keep
  coming); a wait that runs out is a ``WireTimeoutError`` and closes the connection;
- at most ``MAX_CONNECTIONS`` connections are open at once (others wait for a slot), and at
  most ``MAX_IDLE_CONNECTIONS`` wait idle for the next call;
- an answer's head may have ``MAX_HEAD_BYTES``, its body ``bounded.MAX_ANSWER_BYTES``
  (``AnswerTooLargeError`` past it); a stream that the reader has not caught up with stops
  reading from the socket at ``_HIGH_WATER`` buffered bytes.

A kept-alive connection that the server closed while it sat idle fails before any byte of the
answer arrives; the request then goes once more on a new connection (``answered`` on the
error says which failures those are).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

from beamish.llm.providers.bounded import MAX_ANSWER_BYTES, AnswerTooLargeError
from beamish.llm.providers.wire.errors import (
    WireConnectionError,
    WireProtocolError,
    WireTimeoutError,
)

MAX_CONNECTIONS = 1000
"""The most connections one client holds open at once (the openai SDK's default)."""

MAX_IDLE_CONNECTIONS = 100
"""The most connections one client keeps idle for the next calls (the openai SDK's default)."""

MAX_HEAD_BYTES = 64 * 1024
"""The most bytes an answer's status line and headers may have."""

_HIGH_WATER = 256 * 1024


class Connection(asyncio.Protocol):
    """One connection to the origin, carrying one exchange at a time; see the module doc."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        """A connection that ``loop.create_connection`` is about to make."""
        self._loop = loop
        self._limit = limit
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._on_idle_lost: Callable[[Connection], None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reset(streaming=False)

    def _reset(self, *, streaming: bool) -> None:
        self._streaming = streaming
        self.status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._interim = False
        self._head_done = False
        self._head_bytes = 0
        self._until_close = False
        self._done = False
        self._keep_alive = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._received = 0
        self._paused = False
        self._answered = False
        self._error: Exception | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport; uvloop's do not subclass asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._on_idle_lost is not None or self._error is not None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(WireProtocolError("the server switched protocols, which was not asked"))
        except httptools.HttpParserError as error:
            self._fail(WireProtocolError(f"the answer is not HTTP/1.1 ({error})"))
        if not self._head_done and self._error is None:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(WireProtocolError(
                    f"the answer's head is longer than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._on_idle_lost is not None:
            forget, self._on_idle_lost = self._on_idle_lost, None
            forget(self)
            return
        if self._done or self._error is not None:
            self._wake()
            return
        if self._head_done and self._until_close and exc is None:
            self._done = True  # a body that ends where the connection does
        else:
            said = f" ({exc})" if exc is not None else ""
            self._error = WireConnectionError(
                f"the server closed the connection before the answer was whole{said}",
                answered=self._answered)
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._headers, self._interim = [], True
            return
        self.status = status
        self._head_done = True
        delimited = False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding"
                                                and b"chunked" in value.lower()):
                delimited = True
            elif lowered == b"content-encoding" and value.strip().lower() != b"identity":
                self._fail(WireProtocolError(
                    f"the answer is compressed ({value.decode('latin-1')}), which was not "
                    "asked for"))
        self._until_close = not delimited and status not in (204, 304)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._error is not None:
            return
        self._received += len(body)
        if self._received > self._limit:
            self._fail(AnswerTooLargeError(f"the answer is longer than {self._limit} bytes"))
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._streaming and self._buffered > _HIGH_WATER and not self._paused:
            assert self._transport is not None
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._done = True
        self._keep_alive = self._parser.should_keep_alive()
        self._wake()

    # -- the caller's side --------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether a request may go on this connection."""
        return not self._closed and self._transport is not None and \
            not self._transport.is_closing()

    @property
    def reusable(self) -> bool:
        """Whether the last answer was read to its end and the server keeps the connection."""
        return self._done and self._keep_alive and self._error is None and self.usable

    def headers(self) -> dict[str, str]:
        """The answer's headers, names in lower case (the last of a repeated name wins)."""
        return {key.decode("latin-1").lower(): value.decode("latin-1")
                for key, value in self._headers}

    async def exchange(self, payload: bytes, timeout_s: float, *, streaming: bool) -> None:
        """Send ``payload`` (a whole request) and wait for the answer's head."""
        if not self.usable:
            raise WireConnectionError("the connection closed while it was idle", answered=False)
        assert self._transport is not None
        self._reset(streaming=streaming)
        self._transport.write(payload)
        while not self._head_done or self._interim:
            self._raise_failure()
            await self._wait(timeout_s)
        self._raise_failure()

    async def read(self, timeout_s: float) -> bytes:
        """The whole body of the answer."""
        while not self._done:
            self._raise_failure()
            await self._wait(timeout_s)
        self._raise_failure()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        return body

    async def next_piece(self, timeout_s: float) -> bytes:
        """The body's bytes that arrived since the last call (waiting for some); b"" at its end."""
        while not self._body:
            self._raise_failure()
            if self._done:
                return b""
            await self._wait(timeout_s)
        piece = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        self._buffered = 0
        if self._paused:
            assert self._transport is not None
            self._paused = False
            self._transport.resume_reading()
        return piece

    async def finish(self, grace_s: float) -> None:
        """Wait up to ``grace_s`` for the answer's end, so the connection may be kept."""
        try:
            while not self._done and self._error is None and not self._closed:
                self._body, self._buffered = [], 0
                await self._wait(grace_s)
        except WireTimeoutError:
            self.close()

    def close(self) -> None:
        """Close the connection (at once: an answer cut short cannot be read further)."""
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def park(self, on_lost: Callable[[Connection], None]) -> None:
        """Sit idle in the pool; ``on_lost`` is called if the connection closes meanwhile."""
        self._on_idle_lost = on_lost

    def unpark(self) -> None:
        """Leave the pool for a call."""
        self._on_idle_lost = None

    def _fail(self, error: Exception) -> None:
        self._error = error
        self.close()
        self._wake()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout_s: float) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout_s, _expire, waiter, timeout_s)
        try:
            await waiter
        except WireTimeoutError:
            self.close()
            raise
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future[None], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(WireTimeoutError(f"no data came within {timeout_s:g} s"))


class HTTPClient:
    """The connections to one origin; see the module docstring."""

    def __init__(self, base_url: str, *, limit: int = MAX_ANSWER_BYTES,
                 max_connections: int = MAX_CONNECTIONS,
                 max_idle: int = MAX_IDLE_CONNECTIONS) -> None:
        """Talk to the server of ``base_url`` (``http`` or ``https``); answers stop at
        ``limit`` bytes.

        Raises:
            ValueError: ``base_url`` is not an absolute ``http`` or ``https`` URL.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a base URL is http:// or https:// with a host, not {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        host = self._host.encode("idna").decode("ascii") if not self._host.isascii() \
            else self._host
        host = f"[{host}]" if ":" in host else host
        self.host_header = host if parts.port is None else f"{host}:{parts.port}"
        self._base_path = parts.path.rstrip("/")
        self._query = f"?{parts.query}" if parts.query else ""
        self._tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        self._limit = limit
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._closed = False

    def path(self, suffix: str) -> str:
        """The request target of ``suffix`` (``/chat/completions``) under the base URL."""
        return f"{self._base_path}{suffix}{self._query}"

    async def open(self, payload: bytes, timeout_s: float, *, streaming: bool = False,
                   ) -> Connection:
        """Send ``payload`` on a pooled connection; the connection, its answer's head read.

        The caller reads the body and must ``release`` the connection, whatever happens.
        """
        fresh = False
        while True:
            connection, reused = await self._checkout(timeout_s, fresh=fresh)
            try:
                await connection.exchange(payload, timeout_s, streaming=streaming)
            except WireConnectionError as error:
                self.release(connection)
                if not reused or error.answered:
                    raise
                fresh = True  # a stale kept-alive connection: once more, on a new one
                continue
            except BaseException:
                self.release(connection)
                raise
            return connection

    def release(self, connection: Connection) -> None:
        """Take ``connection`` back: kept for the next call if it can be, else closed."""
        if connection.reusable and not self._closed:
            if self._hand_over(connection):
                return
            if len(self._idle) < self._max_idle:
                connection.park(self._forget)
                self._idle.append(connection)
                return
        connection.close()
        self._free_slot()

    async def aclose(self) -> None:
        """Close every idle connection; those in use close when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.unpark()
            connection.close()
        self._open -= len(idle)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(WireConnectionError("the provider's client is closed",
                                                         answered=False))

    async def _checkout(self, timeout_s: float, *, fresh: bool) -> tuple[Connection, bool]:
        if self._closed:
            raise WireConnectionError("the provider's client is closed", answered=False)
        while self._idle and not fresh:
            connection = self._idle.pop()
            connection.unpark()
            if connection.usable:
                return connection, True
            connection.close()
            self._free_slot()
        if self._open >= self._max_connections:
            handed = await self._wait_for_slot(timeout_s)
            if handed is not None:
                return handed, True
        else:
            self._open += 1
        try:
            return await self._connect(timeout_s), False
        except BaseException:
            self._free_slot()
            raise

    async def _wait_for_slot(self, timeout_s: float) -> Connection | None:
        """A connection handed over, or None: a slot is free (and counted) for a new one."""
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # given to us just as we gave up: give it back
                if handed is not None:
                    self.release(handed)
                else:
                    self._free_slot()
            elif not waiter.done():
                waiter.cancel()
            if isinstance(error, TimeoutError):
                raise WireTimeoutError(
                    f"no connection was free within {timeout_s:g} s") from None
            raise

    async def _connect(self, timeout_s: float) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop, self._limit), self._host, self._port,
                    ssl=self._tls, server_hostname=self._host if self._tls else None)
        except TimeoutError:
            raise WireTimeoutError(f"could not connect within {timeout_s:g} s") from None
        except OSError as error:  # refused, unreachable, no such host, TLS failed
            raise WireConnectionError(
                f"could not connect to {self.host_header}: {error}", answered=False) from error
        return connection

    def _hand_over(self, connection: Connection) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter, still counted
                return
        self._open -= 1

    def _forget(self, connection: Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)
        self._free_slot()

