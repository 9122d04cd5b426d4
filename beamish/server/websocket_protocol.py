"""``LeanWebSocketProtocol``: uvicorn's WebSocket protocol, sized for many idle sockets.

``beamish serve`` keeps thousands of mostly idle Phoenix sockets open, and per connection
uvicorn's sans-I/O WebSocket protocol keeps memory it no longer needs:

* the upgrade's request and response with their headers (about 3 KiB), and the headers of
  the ASGI scope (about 1 KiB), read only until the app accepts — emptied at the accept
  (websockets' parser still refers to the request). An app served with this protocol reads
  the headers it needs before it accepts, as beamish's socket endpoint does;
* an ``asyncio.Queue`` for received messages and an ``asyncio.Event`` for write flow control:
  four deques (about 600 bytes each, allocated even when empty) and their waiters — replaced
  by :class:`LeanQueue` and :class:`LeanEvent`, which hold storage only while something
  waits.

uvicorn stops reading the connection after each received message until the app has taken
it: two changes of the event loop's selector (two system calls) per message. This protocol
reads ahead instead, and stops reading only while ``READ_AHEAD`` messages wait for the app,
so a slow app still pushes back on its client.

It offers the ``beamish.websocket.deliver`` scope extension
(:data:`beamish.channels.endpoint.DELIVER`): :meth:`LeanWebSocketProtocol.deliver_to` hands
received messages to a callback as they are parsed — the channels cast them straight into the
socket actor's mailbox — instead of through the ASGI ``receive`` and a task woken for each.

It offers the ``beamish.websocket.send_nowait`` scope extension
(:data:`beamish.channels.endpoint.SEND_NOWAIT`): :meth:`LeanWebSocketProtocol.send_nowait`
sends a message without waiting when ``send`` would not wait, so the channels write frames as
they are queued instead of from a task woken for each burst. The frames sent so during one
turn of the event loop go out in one write at the start of the next turn: a chat answer's
reply and first tokens are one system call, not one each. They wait in the websockets
connection's own output buffer, which every other write of the protocol (``send``, a pong, a
close) empties first, so frames keep their order.

It also records an upgrade refused with an HTTP response (the ASGI denial-response
extension) as a completed handshake, which uvicorn's protocol forgets: without this, each
client refused with a 403 left an ERROR line in the server's log.

The protocol is uvicorn's own otherwise (``uvicorn.Config(ws=LeanWebSocketProtocol)``).
It subclasses uvicorn's private sans-I/O protocol, so ``beamish serve`` uses it only with the
uvicorn and websockets releases it was verified with, and uvicorn's stock protocol otherwise
(:mod:`beamish.server.websocket_adapter`).
The replacements provide exactly what it calls — ``put_nowait``, ``get`` and ``empty``;
``set``, ``clear``, ``is_set`` and ``wait`` — with asyncio's semantics for one event loop.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from beamish.channels.endpoint import DELIVER, SEND_NOWAIT
from beamish.runtime.loops import LoopLocal, NextTurn

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent
    from uvicorn.config import Config
    from uvicorn.server import ServerState
    from websockets.http11 import Request

_T = TypeVar("_T")

READ_AHEAD = 16
"""Received messages that may wait for the app before the connection stops being read."""


class _Waiters:
    """Futures of the tasks waiting for something; a list only while someone waits.

    Each waiter has its own future, so cancelling one waiting task leaves the others waiting.
    """

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] | None = None

    async def wait(self) -> None:
        future = asyncio.get_running_loop().create_future()
        if self._futures is None:
            self._futures = []
        self._futures.append(future)
        try:
            await future
        finally:
            futures = self._futures
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    self._futures = None

    def wake(self) -> None:
        futures, self._futures = self._futures, None
        for future in futures or ():
            if not future.done():
                future.set_result(None)


class LeanQueue(Generic[_T]):
    """An unbounded FIFO queue (``put_nowait``, ``get``, ``empty``) that is free when empty."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[_T] | None = None
        self._getters = _Waiters()

    def put_nowait(self, item: _T) -> None:
        """Add ``item``; wake the getters."""
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._getters.wake()

    async def get(self) -> _T:
        """Remove and return the oldest item, waiting for one if empty."""
        while not self._items:
            await self._getters.wait()
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        """Whether no item waits."""
        return not self._items

    def qsize(self) -> int:
        """How many items wait."""
        return len(self._items) if self._items else 0


class LeanEvent:
    """``asyncio.Event`` (``set``, ``clear``, ``is_set``, ``wait``) without a deque."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters = _Waiters()

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag; wake every waiter."""
        self._value = True
        self._waiters.wake()

    def clear(self) -> None:
        """Reset the flag."""
        self._value = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is)."""
        while not self._value:
            await self._waiters.wait()


_TEXT = 0x81  # FIN + text opcode
_BINARY = 0x82  # FIN + binary opcode
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")


def _header(first: int, length: int) -> bytes:
    """The header of a server's (unmasked) frame of ``length`` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return _LENGTH_16.pack(first, 126, length)
    return _LENGTH_64.pack(first, 127, length)


# The connections of each event loop with frames to write at its next turn.
_flushes: LoopLocal[NextTurn[LeanWebSocketProtocol]] = LoopLocal(
    lambda: NextTurn(LeanWebSocketProtocol.flush))


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with lean buffers (see the module docs)."""

    _deliver: Callable[[Any, str | bytes], bool] | None = None
    _deliver_to: Any = None

    def __init__(self, config: Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None,
                 ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The protocol itself is the extensions' value: nothing more to keep per connection.
        extensions = self.scope["extensions"]
        extensions[SEND_NOWAIT] = self  # type: ignore[assignment]
        extensions[DELIVER] = self  # type: ignore[assignment]

    def send_nowait(self, message: str | bytes) -> bool:
        """Send a text (str) or binary message, as ``send`` would but without waiting; False,
        having sent nothing, when ``send`` must be used: the connection is not open (``send``
        raises then, as the app expects), or its buffers are full (``send`` waits for them).

        The message is written with the others sent this turn of the event loop, at the start
        of the next (see the module docs).
        """
        # OPEN: accepted (not refused), and no close sent or received.
        conn = self.conn
        if conn.state is not State.OPEN or self.disconnected or not self.writable.is_set():
            return False
        text = isinstance(message, str)
        data = message.encode() if isinstance(message, str) else message
        writes = conn.writes
        if not writes:  # the first since the last write: a flush is due at the next turn
            _flushes.get(self.loop).add(self)
        if conn.extensions or conn.expect_continuation_frame or conn.debug:
            if text:
                conn.send_text(data)
            else:
                conn.send_binary(data)
        else:
            # What send_text/send_binary append for one unmasked, uncompressed, final frame,
            # without building and serialising a Frame for it.
            writes.append(_header(_TEXT if text else _BINARY, len(data)))
            writes.append(data)
        return True

    def flush(self) -> None:
        """Write what the connection has to send (what ``send_nowait`` left), if anything."""
        if not self.disconnected:
            output = self.conn.data_to_send()
            if output:
                self.transport.write(b"".join(output))

    def deliver_to(self, deliver: Callable[[Any, str | bytes], bool] | None,
                   target: Any = None) -> None:
        """Hand each message received from now on to ``deliver(target, message)`` as it
        arrives, instead of queueing it for the app's ``receive``; None stops that.

        ``deliver`` returns False when it cannot take a message now: that message, and every
        one after it until the app has taken them all, is queued for ``receive`` as before
        (which keeps their order, and stops reading the connection at ``READ_AHEAD``).
        A disconnect always goes through ``receive``. (A function and its target rather than
        one callable: a connection then keeps no object of its own for this.)
        """
        self._deliver = deliver
        self._deliver_to = target

    def send_receive_event_to_app(self) -> None:
        deliver = self._deliver
        if deliver is not None and self.queue.empty() and not self.close_sent:
            frames = self.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            message: str | bytes | None = data
            if self.curr_msg_data_type == "text":
                try:
                    message = data.decode()
                except UnicodeDecodeError:  # uvicorn's own path closes with 1007
                    message = None
            if message is not None and deliver(self._deliver_to, message):
                self.frames = []
                return
        paused = self.read_paused
        self.read_paused = True  # uvicorn's method pauses reading unless it is paused already
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queue.qsize() >= READ_AHEAD:
            # receive() resumes reading once the app has taken every waiting message.
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        kind = message["type"]
        if kind == "websocket.accept" and self.handshake_complete:
            # Emptied, not just dropped: websockets' parser still holds the request.
            for handshake in (vars(self).pop("request", None), vars(self).pop("response", None)):
                if handshake is not None:
                    handshake.headers.clear()
            self.scope["headers"] = []  # read at the upgrade; the scope lives as long
        elif (kind == "websocket.http.response.body" and not message.get("more_body", False)
              and self.close_sent):
            # The upgrade was answered with an HTTP response (a 403 for a bad token): that
            # completes the handshake. uvicorn's own protocol does not record it, and logs
            # "ASGI callable returned without completing handshake" at ERROR for every
            # refused client.
            self.handshake_complete = True


__all__ = ["LeanEvent", "LeanQueue", "LeanWebSocketProtocol"]
