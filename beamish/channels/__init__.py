"""Phoenix Channels V2 over WebSockets: the codec, the socket and channel actors, the endpoint.

A generic framework: it knows topics, channels and sockets, not what an application does
with them. It depends on :mod:`beamish.runtime` (the actors), :mod:`beamish.auth` (who a
socket speaks for) and :mod:`beamish.compact_json`, and on Starlette for the endpoint; never
on FastAPI, the HTTP API or the application. The chat product's conversation channel is in
:mod:`beamish.chat`.

The official ``phoenix`` JavaScript client (1.8) talks to it unmodified. Layers, bottom up:

* :mod:`.frames` and :mod:`.socket_state` — the sans-I/O codec and socket state machine
  (frames in, events and frames out; no event loop), with :mod:`.handshake` (subprotocol,
  token, ``vsn``), :mod:`.idle`, :mod:`.limits` (rate, outbound queue), :mod:`.close_codes`.
* :mod:`.channel` — :class:`Channel`, the application's actor per joined topic.
* :mod:`.socket_actor` and :mod:`.endpoint` — one actor per connection, and the
  :class:`SocketEndpoint` Starlette route at ``/socket/websocket``.

Errors are in :mod:`.errors` (the protocol's) and :mod:`.channel` (``JoinRefused`` and
``ReplyError``, a channel's answers rather than failures); a bad option raises the runtime's
:class:`~beamish.runtime.InvalidOptionError`, re-exported here.

``ConversationChannel`` and ``ConversationHistory`` moved to :mod:`beamish.chat`; importing
them from here still works, with a ``DeprecationWarning``, until the next release.
"""

import importlib
import warnings
from typing import Any

from beamish.channels.channel import (
    Channel,
    ChannelEnd,
    JoinRefused,
    ReplyError,
    ReplyRef,
    SocketInfo,
    channel_end,
)
from beamish.channels.close_codes import CloseCode
from beamish.channels.endpoint import SocketEndpoint
from beamish.channels.errors import ChannelsError, FrameError, InvalidOptionError
from beamish.channels.frames import Frame, decode_text, encode_text
from beamish.channels.limits import RateLimit
from beamish.channels.socket_actor import SocketOptions
from beamish.channels.socket_state import PhoenixSocket

__all__ = [
    "Channel", "ChannelEnd", "ChannelsError", "CloseCode", "Frame", "FrameError",
    "InvalidOptionError", "JoinRefused", "PhoenixSocket", "RateLimit", "ReplyError", "ReplyRef",
    "SocketEndpoint", "SocketInfo", "SocketOptions", "channel_end", "decode_text", "encode_text",
]

_MOVED = {"ConversationChannel": "beamish.chat", "ConversationHistory": "beamish.chat"}
"""Names that moved out of this package, and their new home (kept for one release)."""


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'beamish.channels' has no attribute {name!r}")
    warnings.warn(
        f"beamish.channels.{name} moved to {home}.{name}; import it from {home} "
        "(the old name goes in the next release)",
        DeprecationWarning, stacklevel=2)
    # The chat product sits above this package: load it only when an old name is asked for.
    return getattr(importlib.import_module(home), name)
