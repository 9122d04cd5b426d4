"""``ConnectionGuard``: caps, first-request deadlines and shortage reports for uvicorn.

The decisions are :mod:`beamish.server.connections`'; this module only moves them onto
asyncio, through public interfaces: uvicorn's ``http=`` option takes a protocol class, and
:meth:`ConnectionGuard.protocol_class` wraps uvicorn's own in one that

* at ``connection_made`` admits the connection or aborts it at once (no uvicorn protocol is
  built for a refused one), and counts it against its client address until
  ``connection_lost``;
* closes it if its first request head (or its WebSocket handshake) is not complete by the
  deadline — with a 408 if it sent part of a head;
* hands every other event to uvicorn's protocol, and after a WebSocket upgrade to the
  protocol uvicorn switched to.

It stays the transport's protocol for the connection's whole life (so it sees
``connection_lost`` after an upgrade too): uvicorn's protocol gets a :class:`_Transport`
whose ``set_protocol`` switches the guard's inner protocol instead, whose writes are
gathered into one per turn of the event loop, and whose other hot methods
(``pause_reading``...) are the real transport's own bound methods.

:meth:`ConnectionGuard.install` also sets an event-loop exception handler that reports
asyncio's "socket.accept() out of system resource" (EMFILE, ENFILE, ENOBUFS, ENOMEM) once
per interval with a count, instead of a traceback per failed accept; refusals by the caps
are reported the same way. :func:`raise_fd_limit` raises the process's soft descriptor
limit to its hard limit.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from beamish.server.connections import (
    ConnectionCaps,
    FirstRequest,
    Phase,
    Refusal,
    ShortageLog,
    client_address,
    connection_budget,
    fd_limit_target,
)
from beamish.settings import ServerSettings

log = logging.getLogger("beamish.server")

SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""What asyncio's accept() fails with when the process or system is out of resources."""

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8"
                    b"\r\nconnection: close\r\ncontent-length: 44\r\n\r\n"
                    b"request head not complete before the deadline")

ProtocolFactory = Callable[..., asyncio.Protocol]


@dataclass(frozen=True)
class GuardOptions:
    """What :class:`ConnectionGuard` enforces (``[server]`` settings; see ``beamish.settings``).

    ``max_connections`` is the budget already fitted to the descriptor limit.
    """

    max_connections: int
    max_connections_per_ip: int
    header_timeout_s: float
    handshake_timeout_s: float
    shortage_log_interval_s: float

    @classmethod
    def from_settings(cls, server: ServerSettings, fd_limit: int | None) -> GuardOptions:
        """The options of ``[server]``, the total fitted under ``fd_limit``."""
        return cls(connection_budget(server.max_connections, fd_limit),
                   server.max_connections_per_ip, server.header_timeout_s,
                   server.handshake_timeout_s, server.shortage_log_interval_s)


class ConnectionGuard:
    """Admits, times and counts the connections of one server (see the module docstring)."""

    def __init__(self, options: GuardOptions) -> None:
        self.options = options
        self.caps = ConnectionCaps(total=options.max_connections,
                                   per_ip=options.max_connections_per_ip)
        self.closed_by_deadline = 0
        """Connections closed because their first request or handshake was late."""
        self.pending_deadlines = 0
        """Open connections still due to complete their first request or handshake."""
        interval = options.shortage_log_interval_s
        self._refusals = ShortageLog(interval)
        self._accept_errors = ShortageLog(interval)
        self._flushes: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None
        self._latest_refusal = Refusal.TOTAL, ""

    @property
    def accept_errors(self) -> int:
        """accept() calls that failed for want of resources, so far."""
        return self._accept_errors.total

    def protocol_class(self, inner: ProtocolFactory) -> type[asyncio.Protocol]:
        """A protocol class for ``uvicorn.Config(http=...)`` that guards ``inner``'s
        connections; uvicorn builds it with keyword arguments, passed on to ``inner``."""
        guard = self

        class GuardedProtocol(_GuardedConnection):
            def __init__(self, **options: Any) -> None:
                super().__init__(guard, lambda: inner(**options))

        return GuardedProtocol

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Report accept() shortages on ``loop`` once per interval (see the module docs)."""
        self._loop = loop
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._handle_exception)

    def uninstall(self) -> None:
        """Put back the loop's previous exception handler; cancel pending reports."""
        for timer in self._flushes.values():
            timer.cancel()
        self._flushes.clear()
        if self._loop is not None and self._loop.get_exception_handler() == (
                self._handle_exception):
            self._loop.set_exception_handler(self._previous_handler)
        self._loop = None

    # -- the connections' callbacks --------------------------------------------------------

    def _refused(self, reason: Refusal, address: str) -> None:
        self._latest_refusal = reason, address
        count = self._refusals.record(_now())
        if count is not None:
            self._report_refusals(count)
        else:
            self._flush_later("refusals", self._refusals, self._report_refusals)

    def _report_refusals(self, count: int) -> None:
        refused = self.caps.refused
        reason, address = self._latest_refusal
        log.warning(
            "refused %d connection(s) since the last report (latest from %s: %s): %d open, "
            "caps %d in total and %s per client address; refused so far: %d over the "
            "per-address cap, %d over the total ([server] max_connections, "
            "max_connections_per_ip)", count, address or "a local socket", reason.value,
            self.caps.open, self.caps.total, self.caps.per_ip or "no cap",
            refused[Refusal.PER_IP], refused[Refusal.TOTAL])

    def _handle_exception(self, loop: asyncio.AbstractEventLoop,
                          context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in SHORTAGE_ERRNOS
                and "accept" in str(context.get("message", ""))):
            count = self._accept_errors.record(loop.time())
            if count is not None:
                self._report_accept_errors(count, exc)
            else:
                self._flush_later("accept", self._accept_errors,
                                  lambda n: self._report_accept_errors(n, exc))
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _report_accept_errors(self, count: int, exc: OSError) -> None:
        log.error(
            "cannot accept connections: %s (%d time(s) since the last report; asyncio "
            "retries each second); %d connections open, cap %d: lower [server] "
            "max_connections or raise the file-descriptor limit", exc.strerror or exc, count,
            self.caps.open, self.caps.total)

    def _flush_later(self, kind: str, shortage: ShortageLog,
                     report: Callable[[int], None]) -> None:
        """Report what ``shortage`` holds back when it is due, once per interval."""
        loop = self._loop or asyncio.get_running_loop()
        due = shortage.due
        if kind in self._flushes or due is None:
            return

        def flush() -> None:
            del self._flushes[kind]
            count = shortage.flush(loop.time())
            if count is not None:
                report(count)
            elif shortage.due is not None:
                self._flush_later(kind, shortage, report)

        self._flushes[kind] = loop.call_at(due, flush)


def _now() -> float:
    return asyncio.get_running_loop().time()


class _GuardedConnection(asyncio.Protocol):
    """One connection's protocol for its whole life (see the module docstring)."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], asyncio.Protocol],
                 ) -> None:
        self._guard = guard
        self._make_inner = make_inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._address: str | None = None  # set once admitted
        self._first: FirstRequest | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        transport = cast(asyncio.Transport, transport)  # a stream server's: a Transport
        address = client_address(transport.get_extra_info("peername"))
        refusal = guard.caps.admit(address)
        if refusal is not None:
            transport.abort()  # at once: no request read, no protocol built
            guard._refused(refusal, address)
            return
        self._address = address
        self._transport = transport
        loop = asyncio.get_running_loop()
        options = guard.options
        self._first = FirstRequest(loop.time(), header_timeout=options.header_timeout_s,
                                   handshake_timeout=options.handshake_timeout_s)
        self._schedule()
        self._inner = inner = self._make_inner()
        inner.connection_made(cast(asyncio.Transport, _Transport(transport, self)))

    def data_received(self, data: bytes) -> None:
        inner, first = self._inner, self._first
        if inner is None:
            return
        if first is not None and first.phase is Phase.REQUEST:
            first.received(data)
            inner.data_received(data)
            self._schedule()
        else:
            inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._set_timer(None)
        if self._address is not None:
            self._guard.caps.release(self._address)
            self._address = None
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    # -- from _Transport -----------------------------------------------------------------

    def switched(self, protocol: asyncio.BaseProtocol) -> None:
        """uvicorn switched the connection to ``protocol`` (a WebSocket upgrade)."""
        self._inner = cast(asyncio.Protocol, protocol)
        if self._first is not None:
            self._first.upgraded()
            self._schedule()

    def answered(self) -> None:
        """The server wrote to the connection for the first time since it connected or,
        if it upgraded since, since the upgrade."""
        if self._first is not None:
            self._first.answered()
            self._schedule()

    # -- the deadline --------------------------------------------------------------------

    def _schedule(self) -> None:
        first = self._first
        deadline = None if first is None else first.deadline
        timer = self._timer
        if timer is not None and timer.when() == deadline:
            return
        if timer is not None:
            timer.cancel()
        if deadline is None:
            self._first = None  # done with deadlines: the connection keeps no state for them
            self._set_timer(None)
        else:
            self._set_timer(asyncio.get_running_loop().call_at(deadline, self._expire))

    def _set_timer(self, timer: asyncio.TimerHandle | None) -> None:
        self._guard.pending_deadlines += (timer is not None) - (self._timer is not None)
        self._timer = timer

    def _expire(self) -> None:
        self._set_timer(None)
        first, transport = self._first, self._transport
        if first is None or first.phase is Phase.DONE or transport is None:
            return
        if transport.is_closing():
            return
        self._guard.closed_by_deadline += 1
        if first.sent_partial_head:
            transport.write(_REQUEST_TIMEOUT)
        transport.close()


class _Transport:
    """The transport uvicorn's protocols see: the real one, except that switching protocols
    switches the guard's inner protocol, the first write is reported to the guard, and
    writes are gathered for the rest of the event loop's turn.

    Gathering: uvicorn writes a response's head and its body in two calls, a stream each
    chunk, a WebSocket each frame; each would be a system call of its own. Written here,
    the bytes wait until the callbacks of the loop's current turn have run
    (``loop.call_soon``), then go out in one write: the head with the body, or every frame
    a turn produced for the connection. Nothing waits for a later turn, so no answer is
    delayed beyond the turn that wrote it. ``close`` and ``write_eof`` send what waits
    first; ``abort`` drops it, as the real transport's would; the write buffer's size
    counts what waits.
    """

    def __init__(self, transport: asyncio.Transport, connection: _GuardedConnection) -> None:
        self._transport = transport
        self._connection = connection
        self._pending: list[bytes | bytearray | memoryview] = []
        self._flush_due = False
        self.write: Callable[[bytes | bytearray | memoryview], None] = self._first_write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.is_reading = transport.is_reading

    def _first_write(self, data: bytes | bytearray | memoryview) -> None:
        self.write = self._gather  # from now on, gathered per turn of the loop
        self._gather(data)
        self._connection.answered()

    def _gather(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        pending, self._pending = self._pending, []
        if not pending or self._transport.is_closing():
            return  # closed since: the real transport would drop (and warn about) it
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.write = self._first_write  # an upgrade's answer ends its handshake
        self._connection.switched(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self._connection._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def raise_fd_limit() -> int | None:
    """Raise this process's soft file-descriptor limit to its hard limit where allowed, log
    the limit, and return it (None where there is no such limit, as on Windows)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = fd_limit_target(soft, hard, unlimited=resource.RLIM_INFINITY)
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("file descriptors: cannot raise the soft limit from %d to %d (%s)",
                        soft, target, exc)
            return None if soft == resource.RLIM_INFINITY else soft
        log.info("file descriptors: soft limit raised from %d to %d", soft, target)
        return target
    if soft == resource.RLIM_INFINITY:
        return None
    log.info("file descriptors: soft limit %d (the hard limit)", soft)
    return soft


__all__ = ["SHORTAGE_ERRNOS", "ConnectionGuard", "GuardOptions", "raise_fd_limit"]
