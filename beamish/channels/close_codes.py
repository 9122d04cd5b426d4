"""WebSocket close codes the channels server uses, and when it uses each.

The phoenix JS client reconnects (with backoff 10, 50, 100, 150, 200, 250, 500, 1000, 2000 ms,
then every 5 s) after any close whose code is not 1000. So a server that wants the client back
(shutdown, restart, idle) must never close with 1000.

===== ================ ===========================================================================
code  name             used when
===== ================ ===========================================================================
1000  NORMAL           the connection is over for good: the client asked to close, or the
                       application ends it deliberately (e.g. the user was deleted); the JS
                       client does *not* reconnect
1001  GOING_AWAY       the server is shutting down (SIGTERM), or the socket sat idle for
                       ``idle_timeout`` seconds (default 60) without a frame; clients reconnect
1008  POLICY_VIOLATION the client broke the protocol in a way no reply can answer (bad JSON,
                       not a five-element array, unreadable ref/topic, a malformed binary
                       frame), or broke a server policy such as overflowing its bounded
                       outbound queue (a slow consumer)
1009  MESSAGE_TOO_BIG  a frame was larger than ``max_frame_size``
1011  INTERNAL_ERROR   the server failed unexpectedly while serving this socket (its actor
                       crashed); the client reconnects
1012  SERVICE_RESTART  the server is restarting or draining connections for a deploy (Phoenix's
                       drainer uses it too); the client reconnects
===== ================ ===========================================================================
"""

from __future__ import annotations

from enum import IntEnum

#: RFC 6455 §5.5: a close frame's body is at most 125 bytes, two of which hold the code.
MAX_CLOSE_REASON_BYTES = 123


class CloseCode(IntEnum):
    """The close codes above; an ``IntEnum``, so it passes wherever an ``int`` code goes."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012

    @property
    def client_reconnects(self) -> bool:
        """Whether the phoenix JS client reconnects after a close with this code."""
        return self is not CloseCode.NORMAL


def truncate_reason(reason: str) -> str:
    """Cut ``reason`` to what a close frame can carry (123 UTF-8 bytes), on a character edge."""
    encoded = reason.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return encoded[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
