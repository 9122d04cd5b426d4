"""Connection limits of ``beamish serve``, as decisions on values the adapter passes in.

Every open TCP connection holds a file descriptor, and a process has a limited number; a
client that opens connections and sends nothing would otherwise hold them for ever and
starve everyone else (and the database and providers, which need descriptors too). The
adapter (:mod:`beamish.server.connection_guard`) asks these plain objects what to do; none of
them reads a clock or touches a socket, so their tests need no event loop.

* :class:`ConnectionCaps` — admit a connection or refuse it, by client address and in total.
  The address is the TCP peer's (behind a reverse proxy every client has the proxy's: turn
  the per-address cap off there, ``max_connections_per_ip = 0``).
* :class:`FirstRequest` — the deadlines of a new connection: its first request head must be
  complete within ``header_timeout`` seconds of connecting (a client that sends nothing, or
  trickles a head byte by byte, is closed), and a WebSocket upgrade must have been answered
  within ``handshake_timeout`` seconds of connecting. After that, HTTP keep-alive
  (uvicorn's ``timeout_keep_alive``) and the Phoenix socket's idle timeout
  (:mod:`beamish.channels.idle`) take over.
* :class:`ShortageLog` — a shortage (a refused connection, a failed ``accept()``) is
  reported at once, then at most once per interval with the count since the last report,
  instead of a log line per event.
* :func:`fd_limit_target` and :func:`connection_budget` — the soft descriptor limit to ask
  for (the hard one), and how many connections fit under a limit with descriptors to spare.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Final

HEAD_END: Final = b"\r\n\r\n"
"""What ends an HTTP/1.1 request head (RFC 9112, section 2.1)."""

FD_RESERVE_MIN: Final = 64
"""File descriptors always left to the database, providers, logs and listening sockets."""

FD_RESERVE_SHARE: Final = 8
"""And at least one in this many of the limit is left to them (see :func:`connection_budget`)."""

UNLIMITED_FD_TARGET: Final = 1 << 20
"""The soft limit asked for when the hard one is unlimited (no system allows that many)."""


class Refusal(enum.Enum):
    """Why a connection was refused."""

    PER_IP = "per_ip"
    """Its client address has ``per_ip`` connections open already."""
    TOTAL = "total"
    """The server has ``total`` connections open already."""


def client_address(peername: object) -> str:
    """The client address a connection counts against: the host of a TCP peer name (an
    IPv4-mapped IPv6 address as its IPv4 address), or "" when there is none (a Unix socket)."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return ""
    host = peername[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return host


class ConnectionCaps:
    """How many connections are open, in total and per client address, and which to refuse.

    Args:
        total: connections open at once, at most.
        per_ip: connections open at once from one client address, at most; 0 for no cap.
            Connections without an address ("") count only against ``total``.
    """

    __slots__ = ("_by_address", "_open", "per_ip", "refused", "total")

    def __init__(self, *, total: int, per_ip: int) -> None:
        if total < 1 or per_ip < 0:
            raise ValueError(f"caps must be total >= 1 and per_ip >= 0, not {total}, {per_ip}")
        self.total = total
        self.per_ip = per_ip
        self._open = 0
        self._by_address: dict[str, int] = {}
        self.refused: dict[Refusal, int] = dict.fromkeys(Refusal, 0)
        """Connections refused so far, by reason."""

    @property
    def open(self) -> int:
        """Connections admitted and not yet released."""
        return self._open

    def open_from(self, address: str) -> int:
        """Connections admitted from ``address`` and not yet released."""
        return self._by_address.get(address, 0)

    def admit(self, address: str) -> Refusal | None:
        """Count a new connection from ``address`` and return None, or refuse it (counted in
        ``refused``) and say why; a refused connection is not released."""
        if self._open >= self.total:
            return self._refuse(Refusal.TOTAL)
        count = self._by_address.get(address, 0)
        if address and self.per_ip and count >= self.per_ip:
            return self._refuse(Refusal.PER_IP)
        self._by_address[address] = count + 1
        self._open += 1
        return None

    def release(self, address: str) -> None:
        """Uncount an admitted connection from ``address`` once it has closed."""
        count = self._by_address.get(address, 0)
        if count <= 0:
            raise ValueError(f"no connection from {address!r} is open")
        if count == 1:
            del self._by_address[address]
        else:
            self._by_address[address] = count - 1
        self._open -= 1

    def _refuse(self, reason: Refusal) -> Refusal:
        self.refused[reason] += 1
        return reason


class Phase(enum.Enum):
    """Where a new connection is in :class:`FirstRequest`."""

    REQUEST = "request"
    """Sending its first request head; due by the header deadline."""
    HANDSHAKE = "handshake"
    """Upgraded to WebSocket, waiting for the server's answer; due by the handshake deadline."""
    DONE = "done"
    """Past both: no deadline of this class applies."""


class FirstRequest:
    """The deadlines of one new connection (see the module docstring).

    The adapter passes every received chunk to :meth:`received` while the phase is
    ``REQUEST``, calls :meth:`upgraded` when the connection becomes a WebSocket and
    :meth:`answered` when the server first writes to it, and closes it if ``deadline`` (a
    time on the same clock as ``now``) passes while the phase is not ``DONE``.
    """

    __slots__ = ("_answered", "_handshake_by", "_head_complete", "_tail", "deadline",
                 "phase", "received_bytes")

    def __init__(self, now: float, *, header_timeout: float, handshake_timeout: float) -> None:
        self.phase = Phase.REQUEST
        self.deadline: float | None = now + header_timeout
        """When the connection is closed unless the phase is DONE by then; None: never."""
        self._handshake_by = now + handshake_timeout
        self.received_bytes = 0
        self._tail = b""
        self._head_complete = False
        self._answered = False

    def received(self, data: bytes) -> None:
        """Some bytes of the connection arrived: done once they complete a request head."""
        if self.phase is not Phase.REQUEST:
            return
        self.received_bytes += len(data)
        window = self._tail + data[:len(HEAD_END) - 1] if self._tail else b""
        if HEAD_END in window or HEAD_END in data:
            self._head_complete = True
            self._done()
        else:
            self._tail = (self._tail + data)[-(len(HEAD_END) - 1):]

    def upgraded(self) -> None:
        """The connection became a WebSocket: its upgrade must be answered by the handshake
        deadline (unless it has been already)."""
        if self._answered:
            self._done()
        else:
            self.phase = Phase.HANDSHAKE
            self.deadline = self._handshake_by

    def answered(self) -> None:
        """The server wrote to the connection (a response, a 101, a refusal)."""
        self._answered = True
        if self.phase is Phase.HANDSHAKE:
            self._done()

    @property
    def sent_partial_head(self) -> bool:
        """Whether some, but not all, of a request head arrived (a 408 is due at expiry)."""
        return self.phase is Phase.REQUEST and self.received_bytes > 0

    def _done(self) -> None:
        self.phase = Phase.DONE
        self.deadline = None
        self._tail = b""


class ShortageLog:
    """When to report one kind of shortage: the first event at once, then at most once per
    ``interval`` with the count of events since the last report.

    :meth:`record` answers the count to report now, or None while the interval runs; the
    adapter then reports what is left at ``due`` (:meth:`flush`), so the last events of a
    burst are reported too.
    """

    __slots__ = ("_next_at", "_pending", "interval", "total")

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval!r}")
        self.interval = interval
        self.total = 0
        """Events recorded so far."""
        self._pending = 0
        self._next_at: float | None = None

    @property
    def due(self) -> float | None:
        """When the events not yet reported are to be reported; None if there are none."""
        return self._next_at if self._pending else None

    def record(self, now: float) -> int | None:
        """One more event at ``now``: the count to report now, or None (reported later)."""
        self.total += 1
        self._pending += 1
        if self._next_at is None or now >= self._next_at:
            return self._take(now)
        return None

    def flush(self, now: float) -> int | None:
        """The count to report at ``now`` if a report is due, else None."""
        due = self.due
        if due is None or now < due:
            return None
        return self._take(now)

    def _take(self, now: float) -> int:
        count, self._pending = self._pending, 0
        self._next_at = now + self.interval
        return count


def fd_limit_target(soft: int, hard: int, *, unlimited: int) -> int:
    """The soft file-descriptor limit to ask for: the hard limit (``UNLIMITED_FD_TARGET`` if
    that is ``unlimited``), never lower than ``soft``."""
    if soft == unlimited:
        return soft
    target = UNLIMITED_FD_TARGET if hard == unlimited else hard
    return max(soft, target)


def connection_budget(max_connections: int, fd_limit: int | None) -> int:
    """How many connections may be open at once: ``max_connections``, and under a
    descriptor limit ``fd_limit`` at most what leaves ``FD_RESERVE_MIN`` descriptors, and
    one in ``FD_RESERVE_SHARE``, to the rest of the process (None: no known limit)."""
    if fd_limit is None:
        return max_connections
    reserve = max(FD_RESERVE_MIN, fd_limit // FD_RESERVE_SHARE)
    return max(1, min(max_connections, fd_limit - reserve))


__all__ = ["FD_RESERVE_MIN", "FD_RESERVE_SHARE", "HEAD_END", "UNLIMITED_FD_TARGET",
           "ConnectionCaps", "FirstRequest", "Phase", "Refusal", "ShortageLog",
           "client_address", "connection_budget", "fd_limit_target"]
