"""Phoenix Channels V2 over WebSockets: the codec, the socket and channel actors, conversations.

The official ``phoenix`` JavaScript client (1.8) talks to it unmodified. Layers, bottom up:

* :mod:`.frames` and :mod:`.socket_state` — the sans-I/O codec and socket state machine
  (frames in, events and frames out; no event loop), with :mod:`.handshake` (subprotocol,
  token, ``vsn``), :mod:`.idle`, :mod:`.limits` (rate, outbound queue), :mod:`.close_codes`.
* :mod:`.channel` — :class:`Channel`, the application's actor per joined topic.
* :mod:`.socket_actor` and :mod:`.transport` — one actor per connection, and the
  :class:`SocketEndpoint` Starlette route at ``/socket/websocket``.
* :mod:`.conversation` — ``conversation:<id>``: chat through the user's session, token by
  token; :mod:`.history` keeps each conversation's last messages.

Errors are in :mod:`.errors` (the protocol's) and :mod:`.channel` (``JoinRefused`` and
``ReplyError``, a channel's answers rather than failures).
"""

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
from beamish.channels.conversation import ConversationChannel
from beamish.channels.errors import ChannelsError, FrameError
from beamish.channels.frames import Frame, decode_text, encode_text
from beamish.channels.history import ConversationHistory
from beamish.channels.limits import RateLimit
from beamish.channels.socket_actor import SocketOptions
from beamish.channels.socket_state import PhoenixSocket
from beamish.channels.transport import SocketEndpoint

__all__ = [
    "Channel", "ChannelEnd", "ChannelsError", "CloseCode", "ConversationChannel",
    "ConversationHistory", "Frame", "FrameError", "JoinRefused", "PhoenixSocket", "RateLimit",
    "ReplyError", "ReplyRef", "SocketEndpoint", "SocketInfo", "SocketOptions", "channel_end",
    "decode_text", "encode_text",
]
