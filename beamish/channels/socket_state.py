"""The Phoenix socket as a sans-I/O state machine: frames in, frames and events out.

One :class:`PhoenixSocket` per WebSocket connection. The adapter feeds it every frame it
receives (:meth:`~PhoenixSocket.receive_text`, :meth:`~PhoenixSocket.receive_bytes`), sends
what :meth:`~PhoenixSocket.frames_to_send` returns, hands :meth:`~PhoenixSocket.events_received`
to the application, and closes the connection when :attr:`~PhoenixSocket.state` becomes
``CLOSING``. Nothing here touches a socket, a clock or an event loop, so every rule below is
tested with plain function calls.

What the socket answers on its own, exactly as ``Phoenix.Socket`` does:

- ``heartbeat`` on topic ``phoenix`` → ``[null, ref, "phoenix", "phx_reply", ok {}]``.
- A message for a topic that is not joined → ``[null, ref, topic, "phx_reply",
  {"status": "error", "response": {"reason": "unmatched topic"}}]``. A join still awaiting
  the application's decision does not count as joined.
- ``phx_leave`` → an ok reply, then ``[jr, jr, topic, "phx_close", {}]`` and a :class:`Left`
  event. Leaving a topic that is not joined gets the ok reply alone; a leave whose join_ref
  names an older join than the current one is ignored (the client raced a server close).
- ``phx_join`` of a topic already joined → ``phx_close`` for the old join, a :class:`Left`
  (reason ``"duplicate_join"``), then the new join proceeds.
- A join beyond ``max_channels`` → an error reply ``{"reason": "too many channels joined"}``.
- A join of a topic no ``topics`` pattern matches → the "unmatched topic" reply.
- A malformed frame → an error reply ``{"reason": "invalid frame", "detail": ...}`` when its
  ref and topic could be read, otherwise the socket closes with 1008 (1009 when oversized);
  either way a :class:`FrameRejected` event reports it. A frame whose topic, ref or event
  breaks the field bounds below is malformed: it is answered (or closes the socket, when its
  topic or ref is the field too long to echo) before anything keeps it.

What the application decides: every acceptable ``phx_join`` becomes a :class:`JoinRequested`
event, answered later with :meth:`~PhoenixSocket.accept_join` or
:meth:`~PhoenixSocket.reject_join`; every other message to a joined topic becomes a
:class:`Message`, answered (if at all) with :meth:`~PhoenixSocket.reply`. The server sends
with :meth:`~PhoenixSocket.push`, reports a crashed channel with
:meth:`~PhoenixSocket.channel_crashed`, ends one channel with
:meth:`~PhoenixSocket.close_channel` and the whole connection with :meth:`~PhoenixSocket.close`.

Calls that target a channel (``accept_join``, ``reply``, ``push``...) return False and send
nothing when the channel is gone — left, superseded, or the socket closed — because in an
asynchronous server that race is normal, not a bug.

Options (keyword arguments of :class:`PhoenixSocket`):
    max_channels: Channels joined (or awaiting a join decision) at once; default 100.
    max_frame_size: Largest frame accepted, in bytes; default 1 MiB (``None``: no limit).
    topics: Topic patterns the socket serves, as in Phoenix's ``channel "room:*"``: an exact
        topic, or a prefix ending in ``*``. Default ``None`` hands every join to the application.
    max_topic_bytes: Longest topic accepted, in UTF-8 bytes; default 256.
    max_ref_bytes: Longest join_ref or ref accepted; default 64 (the JS client's refs are
        decimal counters).
    max_event_bytes: Longest event name accepted; default 64.
    max_join_size: Longest text ``phx_join`` frame accepted, in characters; default 64 KiB.
        A longer one gets an "invalid frame" error reply (its params are kept until the join
        is decided, so they are bounded tighter than other frames).

So everything a socket keeps is bounded: at most ``max_channels`` topics (joined or awaiting
a decision), each with its join request, whose topic and refs are within the bounds above.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, TypeAlias

from beamish.channels.close_codes import CloseCode, truncate_reason
from beamish.channels.errors import FrameError, InvalidOptionError
from beamish.channels.frames import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_REF_BYTES,
    DEFAULT_MAX_TOPIC_BYTES,
    FieldLimits,
    Frame,
    Payload,
    decode_binary,
    decode_text,
    encode_push,
    encode_reply,
    encode_text,
)

DEFAULT_MAX_CHANNELS: Final = 100
DEFAULT_MAX_JOIN_SIZE: Final = 64 * 1024

PHOENIX_TOPIC: Final = "phoenix"
HEARTBEAT: Final = "heartbeat"
JOIN: Final = "phx_join"
LEAVE: Final = "phx_leave"
CLOSE: Final = "phx_close"
ERROR: Final = "phx_error"

UNMATCHED_TOPIC: Final = "unmatched topic"
TOO_MANY_CHANNELS: Final = "too many channels joined"
INVALID_FRAME: Final = "invalid frame"
CHANNEL_CRASH: Final = "channel_crash"

#: Why a channel ended: the client left, the client joined the topic again, or the socket closed.
LeaveReason: TypeAlias = Literal["leave", "duplicate_join", "closed"]


class SocketState(enum.Enum):
    """``OPEN`` serves frames; ``CLOSING``: the adapter must close the connection; ``CLOSED``."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequested:
    """The client asked to join ``topic``; answer with ``accept_join`` or ``reject_join``."""

    topic: str
    join_ref: str | None
    ref: str | None
    payload: dict[str, Any]


class Message(NamedTuple):
    """The client sent ``event`` to the joined ``topic``; ``join_ref`` is as the client sent it."""

    # A named tuple, as immutable as a frozen dataclass and made faster: one per message in.
    topic: str
    event: str
    payload: Payload
    ref: str | None
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class Left:
    """The channel joined as ``join_ref`` on ``topic`` ended; stop whatever serves it."""

    topic: str
    join_ref: str | None
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A malformed frame arrived; the socket already answered it or is closing (for logs)."""

    error: FrameError


Event: TypeAlias = JoinRequested | Message | Left | FrameRejected


# --- the socket ----------------------------------------------------------------------------


class PhoenixSocket:
    """One client connection's Phoenix V2 protocol state (see the module docstring)."""

    __slots__ = (
        "_events",
        "_exact_topics",
        "_frames",
        "_joined",
        "_limits",
        "_max_channels",
        "_max_frame_size",
        "_max_join_size",
        "_pending",
        "_topic_prefixes",
        "close_code",
        "close_reason",
        "state",
    )

    def __init__(
        self,
        *,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
        topics: Sequence[str] | None = None,
        max_topic_bytes: int = DEFAULT_MAX_TOPIC_BYTES,
        max_ref_bytes: int = DEFAULT_MAX_REF_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_join_size: int = DEFAULT_MAX_JOIN_SIZE,
    ) -> None:
        if isinstance(max_channels, bool) or not isinstance(max_channels, int) or max_channels < 1:
            raise InvalidOptionError("max_channels", max_channels, "an int >= 1")
        if max_frame_size is not None and (
            isinstance(max_frame_size, bool)
            or not isinstance(max_frame_size, int)
            or max_frame_size < 1
        ):
            raise InvalidOptionError("max_frame_size", max_frame_size, "an int >= 1 or None")
        self._max_channels = max_channels
        self._max_frame_size = max_frame_size
        self._limits = FieldLimits(max_topic_bytes, max_ref_bytes, max_event_bytes)
        if (isinstance(max_join_size, bool) or not isinstance(max_join_size, int)
                or max_join_size < 1):
            raise InvalidOptionError("max_join_size", max_join_size, "an int >= 1")
        self._max_join_size = max_join_size
        self._exact_topics, self._topic_prefixes = _compile_topics(topics)
        self._frames: list[str | bytes] = []
        self._events: list[Event] = []
        self._joined: dict[str, str | None] = {}  # topic -> join_ref
        self._pending: dict[str, JoinRequested] = {}
        self.state = SocketState.OPEN
        #: Set by :meth:`close`: the code and reason the adapter must close the connection with.
        self.close_code: CloseCode | None = None
        self.close_reason = ""

    # --- input ----------------------------------------------------------------------------

    def receive_text(self, data: str) -> None:
        """Feed one text frame from the client. Ignored unless the socket is ``OPEN``."""
        if self.state is not SocketState.OPEN:
            return
        try:
            frame = decode_text(data, max_size=self._max_frame_size, limits=self._limits)
        except FrameError as exc:
            self._reject(exc)
            return
        if frame.event == JOIN and len(data) > self._max_join_size:
            # Join params live as long as the join is undecided: bounded tighter than frames.
            self._error_reply(frame.join_ref, frame.ref, frame.topic, INVALID_FRAME,
                              f"a phx_join frame may be at most {self._max_join_size} "
                              f"characters, got {len(data)}: send smaller join params")
            return
        self._handle(frame)

    def message_in(self, data: str) -> Message | None:
        """``data`` as the :class:`Message` to a joined channel that :meth:`receive_text`
        would make of it, without making it an event; None for any other text frame (a
        heartbeat, a join or leave, a frame for a topic not joined, one that does not decode)
        or when the socket is not ``OPEN``: :meth:`receive_text` deals with those.

        Nothing changes: for an adapter that hands messages to their channel at once.
        """
        if self.state is not SocketState.OPEN:
            return None
        try:
            frame = decode_text(data, max_size=self._max_frame_size, limits=self._limits)
        except FrameError:
            return None
        return self._message(frame)

    def receive_bytes(self, data: bytes) -> None:
        """Feed one binary frame from the client. Ignored unless the socket is ``OPEN``."""
        if self.state is not SocketState.OPEN:
            return
        try:
            frame = decode_binary(data, max_size=self._max_frame_size, limits=self._limits)
        except FrameError as exc:
            self._reject(exc)
            return
        self._handle(frame)

    # --- output ---------------------------------------------------------------------------

    def frames_to_send(self) -> list[str | bytes]:
        """Frames for the client, oldest first (text as ``str``, binary as ``bytes``); drains."""
        frames, self._frames = self._frames, []
        return frames

    def events_received(self) -> list[Event]:
        """Events for the application, oldest first; drains."""
        events, self._events = self._events, []
        return events

    # --- the application's answers and pushes ---------------------------------------------

    def accept_join(self, request: JoinRequested, response: dict[str, Any] | None = None) -> bool:
        """Join ``request.topic``: reply ok with ``response`` (default ``{}``).

        Returns:
            False, sending nothing, when the request is stale: the client joined the topic
            again, left it, or the socket closed since the request arrived.

        Raises:
            EncodeError: ``response`` cannot be encoded; the request stays undecided.
        """
        if not self._is_pending(request):
            return False
        frame = encode_reply(request.join_ref, request.ref, request.topic, "ok", response or {})
        del self._pending[request.topic]
        self._joined[request.topic] = request.join_ref
        self._frames.append(frame)
        return True

    def reject_join(self, request: JoinRequested, response: dict[str, Any] | None = None) -> bool:
        """Refuse the join: reply error with ``response`` (default ``{"reason": "unauthorized"}``).

        The JS client retries a refused join forever (1 s, 2 s, 5 s, then every 10 s) until the
        application calls ``leave()``. Returns False, sending nothing, when the request is stale.
        """
        if not self._is_pending(request):
            return False
        body = {"reason": "unauthorized"} if response is None else response
        frame = encode_reply(request.join_ref, request.ref, request.topic, "error", body)
        del self._pending[request.topic]
        self._frames.append(frame)
        return True

    def reply(self, message: Message, response: Payload | None = None, status: str = "ok") -> bool:
        """Answer ``message`` (matched by its ref) on its channel; ``status`` "ok" or "error".

        A bytes ``response`` goes out as a binary reply. Returns False, sending nothing, when
        the channel is no longer joined.
        """
        if self.state is not SocketState.OPEN or message.topic not in self._joined:
            return False
        join_ref = self._joined[message.topic]
        body: Payload = {} if response is None else response
        self._frames.append(encode_reply(join_ref, message.ref, message.topic, status, body))
        return True

    def push(self, topic: str, event: str, payload: Payload) -> bool:
        """Send ``event`` on joined ``topic``: ``[join_ref, null, topic, event, payload]``.

        A bytes payload goes out as a binary push. Returns False, sending nothing, when
        ``topic`` is not joined.

        Raises:
            EncodeError: the payload is neither a dict nor bytes, or JSON cannot carry it.
        """
        if self.state is not SocketState.OPEN or topic not in self._joined:
            return False
        self._frames.append(encode_push(self._joined[topic], topic, event, payload))
        return True

    def channel_crashed(self, topic: str) -> bool:
        """Report that ``topic``'s channel crashed: send ``phx_error``; the client rejoins.

        No :class:`Left` event follows: the application reported the end itself. Returns
        False when ``topic`` is not joined.
        """
        if self.state is not SocketState.OPEN or topic not in self._joined:
            return False
        join_ref = self._joined.pop(topic)
        self._frames.append(encode_text(Frame(join_ref, join_ref, topic, ERROR, _CRASH_PAYLOAD)))
        return True

    def close_channel(self, topic: str) -> bool:
        """End ``topic``'s channel from the server side: send ``phx_close``.

        The JS client does not rejoin a closed channel. No :class:`Left` event follows: the
        application ended the channel itself. Returns False when ``topic`` is not joined.
        """
        if self.state is not SocketState.OPEN or topic not in self._joined:
            return False
        self._frames.append(_close_frame(topic, self._joined.pop(topic)))
        return True

    def close(self, code: CloseCode = CloseCode.NORMAL, reason: str = "") -> None:
        """Ask the adapter to close the connection with ``code`` (see :mod:`.close_codes`).

        Every joined channel ends with a :class:`Left` (reason ``"closed"``); pending joins
        become stale. Frames queued before the call are still to be sent, before the close.
        Closing a socket that is not ``OPEN`` does nothing.
        """
        if self.state is not SocketState.OPEN:
            return
        self.state = SocketState.CLOSING
        self.close_code = code
        self.close_reason = truncate_reason(reason)
        self._end_all_channels()

    def connection_lost(self) -> None:
        """The connection is gone (closed by either side); the socket becomes ``CLOSED``."""
        if self.state is SocketState.OPEN:
            self._end_all_channels()
        self.state = SocketState.CLOSED

    # --- introspection --------------------------------------------------------------------

    def joined_topics(self) -> dict[str, str | None]:
        """The joined topics and their join_refs (a copy)."""
        return dict(self._joined)

    def is_joined(self, topic: str) -> bool:
        """Whether ``topic`` is joined (a join awaiting the application's decision is not)."""
        return topic in self._joined

    # --- frame handling -------------------------------------------------------------------

    def _handle(self, frame: Frame) -> None:
        message = self._message(frame)
        if message is not None:
            self._events.append(message)
            return
        topic, event = frame.topic, frame.event
        if event == HEARTBEAT and topic == PHOENIX_TOPIC:
            self._frames.append(encode_reply(None, frame.ref, PHOENIX_TOPIC, "ok", {}))
        elif event == JOIN:
            self._handle_join(frame)
        elif event == LEAVE:
            self._handle_leave(frame)
        else:
            self._unmatched(frame)

    def _message(self, frame: Frame) -> Message | None:
        """The frame as a message to a joined channel, if it is one."""
        topic, event = frame.topic, frame.event
        if (event in (JOIN, LEAVE) or topic not in self._joined
                or (event == HEARTBEAT and topic == PHOENIX_TOPIC)):
            return None
        return Message(topic, event, frame.payload, frame.ref, frame.join_ref)

    def _handle_join(self, frame: Frame) -> None:
        topic = frame.topic
        if not self._serves(topic):
            self._unmatched(frame)
            return
        if not isinstance(frame.payload, dict):
            detail = "a phx_join payload must be a JSON object, not a binary frame"
            self._error_reply(frame.join_ref, frame.ref, topic, INVALID_FRAME, detail)
            return
        if topic in self._joined:
            old_join_ref = self._joined.pop(topic)
            self._frames.append(_close_frame(topic, old_join_ref))
            self._events.append(Left(topic, old_join_ref, "duplicate_join"))
        # A join still awaiting its decision is superseded: its accept/reject becomes stale.
        self._pending.pop(topic, None)
        if len(self._joined) + len(self._pending) >= self._max_channels:
            self._error_reply(frame.join_ref, frame.ref, topic, TOO_MANY_CHANNELS)
            return
        request = JoinRequested(topic, frame.join_ref, frame.ref, frame.payload)
        self._pending[topic] = request
        self._events.append(request)

    def _handle_leave(self, frame: Frame) -> None:
        topic, join_ref = frame.topic, frame.join_ref
        if topic in self._joined:
            current = self._joined[topic]
            if join_ref is not None and join_ref != current:
                return  # a leave of an older join: the client raced a server close
            del self._joined[topic]
            self._frames.append(encode_reply(current, frame.ref, topic, "ok", {}))
            self._frames.append(_close_frame(topic, current))
            self._events.append(Left(topic, current, "leave"))
            return
        pending = self._pending.get(topic)
        if pending is not None and join_ref in (None, pending.join_ref):
            del self._pending[topic]
        self._frames.append(encode_reply(join_ref, frame.ref, topic, "ok", {}))

    def _unmatched(self, frame: Frame) -> None:
        self._error_reply(None, frame.ref, frame.topic, UNMATCHED_TOPIC)

    def _reject(self, error: FrameError) -> None:
        self._events.append(FrameRejected(error))
        if error.ref is not None and error.topic is not None:  # FrameError.answerable
            self._error_reply(error.join_ref, error.ref, error.topic, INVALID_FRAME, str(error))
        else:
            self.close(error.close_code, str(error))

    def _error_reply(
        self, join_ref: str | None, ref: str | None, topic: str, reason: str, detail: str = ""
    ) -> None:
        response = {"reason": reason, "detail": detail} if detail else {"reason": reason}
        self._frames.append(encode_reply(join_ref, ref, topic, "error", response))

    # --- channel bookkeeping --------------------------------------------------------------

    def _serves(self, topic: str) -> bool:
        if self._exact_topics is None:
            return True
        return topic in self._exact_topics or topic.startswith(self._topic_prefixes)

    def _is_pending(self, request: JoinRequested) -> bool:
        # Identity, not equality: a request superseded by an identical-looking rejoin is stale.
        return self.state is SocketState.OPEN and self._pending.get(request.topic) is request

    def _end_all_channels(self) -> None:
        self._events.extend(
            Left(topic, join_ref, "closed") for topic, join_ref in self._joined.items()
        )
        self._joined.clear()
        self._pending.clear()


# Phoenix itself sends an empty payload with phx_error; beamish names the reason, as the
# project's protocol notes specify (the JS client passes it to onError callbacks).
_CRASH_PAYLOAD: Final = {"reason": CHANNEL_CRASH}


def _close_frame(topic: str, join_ref: str | None) -> str:
    return encode_text(Frame(join_ref, join_ref, topic, CLOSE, {}))


def _compile_topics(
    topics: Sequence[str] | None,
) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    if topics is None:
        return None, ()
    if isinstance(topics, str):
        raise InvalidOptionError("topics", topics, "a sequence of topic patterns, not one str")
    exact: set[str] = set()
    prefixes: list[str] = []
    for pattern in topics:
        star = pattern.find("*")
        if star == -1:
            exact.add(pattern)
        elif star == len(pattern) - 1:
            prefixes.append(pattern[:-1])
        else:
            raise InvalidOptionError("topics", pattern, "a topic, or a prefix ending in '*'")
    return frozenset(exact), tuple(prefixes)
