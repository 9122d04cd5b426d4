"""Channels: the application's side of a Phoenix channel, one actor per joined topic.

A tutorial. Subclass :class:`Channel`, map topic patterns to it, and serve the endpoint
(:mod:`beamish.channels.endpoint`)::

    class RoomChannel(Channel):
        async def join(self, topic, params, socket):       # runs first, in the new actor
            if not may_enter(socket.user_id, topic):
                raise JoinRefused("unauthorized")           # error reply; the actor stops
            self.room = topic.removeprefix("room:")
            self.push("history", {"messages": recent(self.room)})   # sent right after the ok
            return {"room": self.room}                     # the ok reply's response

        async def handle_in(self, event, payload):         # one client message
            if event == "say":
                self.push("said", {"text": payload["text"]})
                return {"accepted": True}                  # ok reply (None: ok with {})
            if event == "slow":
                self.later = self.reply_ref()              # answer later with self.reply()
                return NOREPLY
            return super().handle_in(event, payload)       # error reply "unknown event"

        def terminate(self, reason):                       # the channel ended: why?
            end = channel_end(reason)                      # a ChannelEnd, or None on a crash

    endpoint = SocketEndpoint({"room:*": RoomChannel})

**Callbacks** (each may be ``def`` or ``async def``). ``join(topic, params, socket)`` returns
the ok reply's response (a dict, or None for ``{}``) or raises :class:`JoinRefused` (a
:class:`ReplyError` refuses the same way, with its response); any other exception there is a
crash and the client gets ``{"reason": "join crashed"}``.
``handle_in(event, payload)`` answers one client message: return the ok response (a dict,
bytes for a binary reply, or None for ``{}``), raise :class:`ReplyError` for an error reply,
or return :data:`~beamish.runtime.NOREPLY` and answer later with :meth:`Channel.reply`. A
binary client push arrives with ``payload`` as bytes. ``handle_info``, ``handle_call`` and
``terminate`` are the actor's; ``init`` and ``handle_cast`` run the channel protocol and
cannot be overridden (a TypeError says so) — set up state in ``join``.

A ``handle_in`` that is a plain ``def`` runs as soon as the socket has read the message
while the channel is idle — nothing in its mailbox, its task waiting — in that step of the
event loop rather than in the channel's task: what the task would have done next, one actor
step (a wakeup of the task and a turn of the event loop) sooner. It may still return an
awaitable for an event that must wait: the channel's task awaits it next, and replies. The
conversation channel answers ``message`` and ``cancel`` so, and awaits the others.

**Actions.** :meth:`Channel.push` sends an event to this channel's client
(``[join_ref, null, topic, event, payload]``) — from any callback, including ``join`` (such
pushes are held back and follow the ok reply). :meth:`Channel.reply_ref` and
:meth:`Channel.reply` answer a message later. ``self.stop()`` ends the channel from the server
side: the client gets ``phx_close`` and does not rejoin.

**Failure.** Each channel is a child (restart ``temporary``) of its socket actor, which
is linked to it and traps exits. A crash — an exception in a callback, including a
payload JSON cannot carry — sends ``phx_error`` to the client, which rejoins with backoff; the
socket, its other channels and other sockets carry on.

**How a channel ends.** The client leaves, the client joins the same topic again, or the
socket closes (the client went away, the server shut down, a slow consumer, an idle
timeout...). Each time ``terminate(reason)`` runs with ``reason.detail`` a :class:`ChannelEnd`
saying which (:func:`channel_end` reads it): the place to record usage or cancel work. A
channel traps exits so that this happens on shutdown too; a linked helper that crashes still
crashes the channel (the default ``handle_info``), so call ``super().handle_info(message)``
for messages an override does not know.

Options, as class attributes (defaults in brackets): ``shutdown_timeout`` [5000] — ms that
``terminate`` may take when the socket goes away before the channel is killed;
``mailbox_size`` [1024] — client messages waiting for ``handle_in`` beyond which the socket
answers ``{"reason": "overloaded"}`` instead of queueing more (the mailbox is started with
``overflow="fail"``, so a ``cast`` or ``call`` to a full channel raises MailboxFullError);
``mailbox_bytes`` [8 MiB] — the same bound by the bytes of those messages as received (a
message is let in whenever none waits, so any frame the socket accepts can reach the channel).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NamedTuple, TypeAlias

from beamish.channels.errors import InvalidOptionError
from beamish.channels.frames import Payload, encode_push, encode_reply
from beamish.channels.socket_state import JoinRequested, Message
from beamish.runtime import NOREPLY, Actor, ActorRef, Exit, ExitReason, cast, try_cast
from beamish.runtime.exits import shutdown
from beamish.runtime.process import current_process

if TYPE_CHECKING:
    from beamish.auth import Principal
    from beamish.channels.socket_actor import Outbox

UNKNOWN_EVENT: Final = "unknown event"
JOIN_CRASHED: Final = "join crashed"
_RESERVED_EVENT_PREFIX: Final = "phx_"

#: Why a channel ended (see :class:`ChannelEnd`).
EndReason: TypeAlias = Literal[
    "leave", "duplicate_join", "closed", "disconnected", "refused", "abandoned"
]


@dataclass(frozen=True, slots=True)
class SocketInfo:
    """The connection a channel serves, as ``join`` sees it.

    Attributes:
        id: The socket actor's number, unique within the node (for logs).
        principal: Who the connection authenticated as.
        params: The connect params (query string), ``vsn`` included, ``token`` left out.
        assigns: Application values the endpoint hands every socket (stores, supervisors).
    """

    id: int
    principal: Principal
    params: Mapping[str, str]
    assigns: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        """The authenticated user."""
        return self.principal.user_id


@dataclass(frozen=True, slots=True)
class ChannelEnd:
    """Why a channel ended; the ``detail`` of the reason its ``terminate`` gets.

    Attributes:
        reason: ``"leave"`` — the client left; ``"duplicate_join"`` — the client joined the
            topic again; ``"closed"`` — the server closed the socket; ``"disconnected"`` — the
            client closed it or the connection dropped; ``"refused"`` — ``join`` raised
            :class:`JoinRefused`; ``"abandoned"`` — the join was answered too late (the client
            left, joined again or went away meanwhile) or its response could not be encoded.
        close_code: For ``closed`` the code the server closed with (1001 shutdown or idle,
            1008 slow consumer or protocol violation, 1009 frame too big, 1011 internal
            error, 1012 restart); for ``disconnected`` the client's code; else None.
        close_reason: For ``closed``, the close frame's reason text.
    """

    reason: EndReason
    close_code: int | None = None
    close_reason: str = ""


def channel_end(reason: ExitReason) -> ChannelEnd | None:
    """The :class:`ChannelEnd` in a channel's exit reason, or None (a crash, a kill)."""
    detail = reason.detail
    return detail if isinstance(detail, ChannelEnd) else None


# Named as an answer, not an error: it is the {:error, reply} of a Phoenix join.
class JoinRefused(Exception):
    """Raise from ``join`` to refuse: the client gets an error reply with :attr:`response`.

    ``JoinRefused("unauthorized", detail="...")`` answers
    ``{"reason": "unauthorized", "detail": "..."}``. The phoenix JS client retries a refused
    join (1 s, 2 s, 5 s, then every 10 s) until the application calls ``leave()``.
    """

    def __init__(self, reason: str = "unauthorized", **details: Any) -> None:
        self.response: dict[str, Any] = {"reason": reason, **details}
        super().__init__(f"join refused: {reason}")


class ReplyError(Exception):
    """Raise from ``handle_in`` to answer with an error reply carrying :attr:`response`.

    ``ReplyError("bad_request", detail="content is required")`` answers
    ``[join_ref, ref, topic, "phx_reply", {"status": "error", "response":
    {"reason": "bad_request", "detail": "content is required"}}]``.
    """

    def __init__(self, reason: str, detail: str = "", **extra: Any) -> None:
        response: dict[str, Any] = {"reason": reason}
        if detail:
            response["detail"] = detail
        response.update(extra)
        self.response = response
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ReplyRef(NamedTuple):
    """Which message to answer: from :meth:`Channel.reply_ref`, for :meth:`Channel.reply`."""

    # A named tuple, as immutable as a frozen dataclass and made faster: one per message in.
    topic: str
    join_ref: str | None
    ref: str | None


# --- messages between a socket and its channels (internal to beamish.channels) -------------


@dataclass(frozen=True, slots=True)
class ChannelInit:
    """The argument of a channel's ``init``: its socket, join request, connection and link."""

    socket: ActorRef
    request: JoinRequested
    info: SocketInfo
    link: FrameLink


@dataclass(frozen=True, slots=True)
class JoinChannel:
    """Socket → channel: run ``join`` now."""


@dataclass(frozen=True, slots=True)
class ChannelIn:
    """Socket → channel: a client message for ``handle_in``, of ``size`` bytes as received."""

    message: Message
    size: int = 0


@dataclass(frozen=True, slots=True)
class _Crashed:
    """A channel's own message: ``handle_in`` raised ``error`` outside its task — crash
    with it in the task, as there."""

    error: Exception


@dataclass(frozen=True, slots=True)
class _Attend:
    """A channel's own message: ``handle_in`` asked for an action (``stop``...) outside
    its task — the task carries it out after this message."""


class _Resume:
    """A channel's own message: ``handle_in``, run outside its task, returned an awaitable —
    the task awaits it (``answer``) next and replies to ``message``."""

    __slots__ = ("answer", "message")

    def __init__(self, message: Message, answer: Awaitable[Any]) -> None:
        self.message = message
        self.answer = answer

    def __del__(self) -> None:
        # The channel exited before its task took this message: close the coroutine nobody
        # will run, so that it is not reported as never awaited.
        answer = self.answer
        if inspect.iscoroutine(answer) and (
                inspect.getcoroutinestate(answer) == inspect.CORO_CREATED):
            answer.close()


@dataclass(frozen=True, slots=True)
class EndChannel:
    """Socket → channel: the channel is over; stop with ``shutdown(end)``."""

    end: ChannelEnd


@dataclass(frozen=True, slots=True)
class JoinResult:
    """Channel → socket: ``join`` accepted (ok, ``response``) or refused (error, ``response``)."""

    sender: ActorRef
    accepted: bool
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelOut:
    """Channel → socket: an encoded frame (a push or a reply) for the client."""

    sender: ActorRef
    topic: str
    frame: str | bytes


class FrameLink:
    """How a channel's frames reach its socket: straight into the outbox when they may.

    Every frame of a channel could be cast to its socket actor (``ChannelOut``), which checks
    that the channel still serves its topic and queues the frame for the writer. Once the
    socket has answered the channel's join, and while the channel serves its topic, that
    check is known to pass, so the socket opens the link (``direct`` is the outbox) and frames
    go straight into the outbox — four fewer actor messages per chat answer. Order is kept:
    a frame goes direct only when none of the channel's frames waits in the socket's
    mailbox, and the socket closes the link (before anything else) when the channel stops
    serving. A full outbox sends the frame the slow way, where the socket decides between
    waiting for the writer and closing the connection as a slow consumer.

    Backpressure: once ``MAX_IN_MAILBOX`` of the channel's frames wait in the socket's
    mailbox, ``send`` returns a future that completes when half of them have been handled
    (or the link closes), so a channel that awaits its pushes — an answer streaming from a
    fast provider — waits for the client instead of filling the socket's mailbox.
    """

    MAX_IN_MAILBOX: ClassVar[int] = 256

    __slots__ = ("_room", "_sent", "direct", "in_mailbox", "inbound_bytes", "socket")

    def __init__(self, socket: ActorRef, sent: asyncio.Future[None]) -> None:
        self.socket = socket
        self._sent = sent  # a done future: what send returns when there is room
        self.direct: Outbox | None = None  # set and cleared by the socket actor only
        self.in_mailbox = 0  # ChannelOut frames cast and not yet handled by the socket
        # The other way: bytes of client messages cast to the channel and not yet handled.
        self.inbound_bytes = 0
        self._room: asyncio.Future[None] | None = None  # made only while the mailbox is full

    def send(self, sender: ActorRef, topic: str, frame: str | bytes) -> asyncio.Future[None]:
        """Queue ``frame`` for the client; a future to await for backpressure (see above)."""
        direct = self.direct
        if direct is not None and not self.in_mailbox and direct.put(frame):
            return self._sent
        self.in_mailbox += 1
        sent = cast(self.socket, ChannelOut(sender, topic, frame))
        if not sent.done() or self.in_mailbox < self.MAX_IN_MAILBOX:
            return sent  # pending only when the socket's own mailbox is full
        if self._room is None:
            self._room = asyncio.get_running_loop().create_future()
        return self._room

    def handled(self) -> None:
        """The socket handled one of the frames it was sent (queued it, or dropped it)."""
        self.in_mailbox -= 1
        if self._room is not None and self.in_mailbox <= self.MAX_IN_MAILBOX // 2:
            self._release()

    def close(self) -> None:
        """The channel no longer serves its topic: nothing goes direct, nobody waits."""
        self.direct = None
        self._release()

    def _release(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)


_JOIN: Final = JoinChannel()
_ATTEND: Final = _Attend()


class Channel(Actor):
    """Base class of channel actors; see the module docs for the callbacks and actions."""

    shutdown_timeout: ClassVar[int] = 5000
    mailbox_size: ClassVar[int] = 1024
    mailbox_bytes: ClassVar[int] = 8 * 1024 * 1024

    _socket: ActorRef
    _request: JoinRequested
    _info: SocketInfo
    _link: FrameLink
    _incoming: Message | None = None
    # Whether handle_in is a plain def, which an idle channel runs as the message is read.
    _handle_in_inline: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handle_in_inline = not inspect.iscoroutinefunction(cls.handle_in)
        for name in ("init", "handle_cast"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides Channel.{name}, which runs the channel "
                    "protocol; set up state in join() and handle your own messages in "
                    "handle_info()"
                )

    # -- owned by the base class ---------------------------------------------------------

    def init(self, arg: ChannelInit) -> None:
        """Keep the join request; the socket asks for ``join`` next. Do not override."""
        self._socket = arg.socket
        self._request = arg.request
        self._info = arg.info
        self._link = arg.link
        self.trap_exit()

    async def handle_cast(self, request: Any) -> None:
        """Messages from the socket. Do not override: use ``handle_info`` for your own."""
        kind = request.__class__
        if kind is ChannelIn:
            self._link.inbound_bytes -= request.size
            answer = self._handle_in(request.message)
            if answer is not None:
                await self._reply_when_answered(request.message, answer)
        elif kind is _Resume:
            await self._reply_when_answered(request.message, request.answer)
        elif kind is JoinChannel:
            await self._join()
        elif kind is EndChannel:
            self.stop(shutdown(request.end))
        elif kind is _Crashed:
            raise request.error
        elif kind is not _Attend:  # _Attend: the actions are carried out after this message
            super().handle_cast(request)

    def handle_info(self, message: Any) -> Any:
        """Crash with a linked actor's abnormal exit, as a channel that did not trap would.

        A linked helper's normal exit is ignored, as it would be without trapping.
        """
        if isinstance(message, Exit):
            if not message.reason.is_normal:
                self.stop(message.reason)
            return
        super().handle_info(message)

    async def _join(self) -> None:
        request = self._request
        # The params go to join alone: the channel keeps its topic and refs, not them.
        self._request = JoinRequested(request.topic, request.join_ref, request.ref, {})
        try:
            result = self.join(request.topic, request.payload, self._info)
            if inspect.isawaitable(result):
                result = await result
        except (JoinRefused, ReplyError) as refused:
            # A ReplyError (from validation shared with handle_in) refuses as JoinRefused
            # would: an answer the client can read, not a crash.
            cast(self._socket, JoinResult(self._ref, False, refused.response))
            self.stop(shutdown(ChannelEnd("refused")))
            return
        cast(self._socket, JoinResult(self._ref, True, {} if result is None else result))

    def take_message(self, message: Message) -> bool:
        """Run ``handle_in`` for ``message`` now, outside this channel's task, if it is a
        plain ``def``: False, with nothing done, if it is a coroutine function (then cast
        the message instead).

        Only while the channel is idle (``beamish.runtime.idle_actor``): the socket calls it
        so as it hands a message over. The callback runs as in the task: as this actor (for
        ``cast``, ``send`` and the tasks it starts), and an exception it raises crashes the
        channel, in its task. An awaitable it returns is awaited by the task, next.
        """
        if not self._handle_in_inline:
            return False
        ref = self._ref
        token = current_process.set(ref)
        try:
            answer = self._handle_in(message)
        except Exception as error:
            try_cast(ref, _Crashed(error))  # idle: the mailbox has room
            return True
        finally:
            current_process.reset(token)
        if answer is not None:
            try_cast(ref, _Resume(message, answer))
        elif ref._attention:  # stop() or another action: the task carries it out
            try_cast(ref, _ATTEND)
        return True

    def _handle_in(self, message: Message) -> Awaitable[Any] | None:
        """Run ``handle_in`` and reply with its answer; when it returns an awaitable, that
        awaitable, for ``_reply_when_answered`` (None otherwise)."""
        self._incoming = message
        try:
            result = self.handle_in(message.event, message.payload)
        except ReplyError as error:
            result, status = error.response, "error"
        else:
            if inspect.isawaitable(result):
                return result
            status = "ok"
        finally:
            self._incoming = None
        self._reply_to(message, status, result)
        return None

    async def _reply_when_answered(self, message: Message, answer: Awaitable[Any]) -> None:
        self._incoming = message
        try:
            result = await answer
        except ReplyError as error:
            result, status = error.response, "error"
        else:
            status = "ok"
        finally:
            self._incoming = None
        self._reply_to(message, status, result)

    def _reply_to(self, message: Message, status: str, result: Any) -> None:
        if result is NOREPLY:
            return
        frame = encode_reply(
            self._request.join_ref, message.ref, message.topic, status,
            {} if result is None else result,
        )
        self._link.send(self._ref, message.topic, frame)

    # -- callbacks -----------------------------------------------------------------------

    def join(self, topic: str, params: dict[str, Any], socket: SocketInfo) -> Any:
        """Accept (return the response dict, or None) or refuse (raise JoinRefused)."""
        raise NotImplementedError(f"{type(self).__name__} must define join(topic, params, socket)")

    def handle_in(self, event: str, payload: Payload) -> Any:
        """Answer a client message; this default answers every event with "unknown event"."""
        raise ReplyError(UNKNOWN_EVENT, f"{self.topic} does not handle event {event!r}")

    # -- actions -------------------------------------------------------------------------

    @property
    def topic(self) -> str:
        """The joined topic."""
        return self._request.topic

    @property
    def join_ref(self) -> str | None:
        """The join's ref, carried by every push and reply of this channel."""
        return self._request.join_ref

    @property
    def socket(self) -> SocketInfo:
        """The connection this channel serves."""
        return self._info

    def push(self, event: str, payload: Payload) -> asyncio.Future[None]:
        """Send ``event`` with ``payload`` (a dict, or bytes for a binary frame) to the client.

        Returns the cast's future: ``await`` it to wait while the socket's mailbox is full
        (backpressure for a channel that pushes in a loop); not awaiting it is fine too.

        Raises:
            ValueError: ``event`` starts with ``phx_`` (reserved for the protocol).
            EncodeError: JSON cannot carry ``payload`` (it is not sent).
        """
        if event.startswith(_RESERVED_EVENT_PREFIX):
            raise ValueError(f"event {event!r} is reserved for the Phoenix protocol")
        topic = self._request.topic
        frame = encode_push(self._request.join_ref, topic, event, payload)
        return self._link.send(self._ref, topic, frame)

    def reply_ref(self) -> ReplyRef:
        """The message ``handle_in`` is answering, to reply to later with :meth:`reply`.

        Raises:
            RuntimeError: called outside ``handle_in``.
        """
        message = self._incoming
        if message is None:
            raise RuntimeError("reply_ref() is only available while handle_in runs")
        return ReplyRef(message.topic, self._request.join_ref, message.ref)

    def reply(
        self, to: ReplyRef, response: Payload | None = None, status: str = "ok"
    ) -> asyncio.Future[None]:
        """Answer the message ``to`` with ``status`` ("ok" or "error") and ``response``.

        Returns the cast's future, as :meth:`push` does.

        Raises:
            EncodeError: JSON cannot carry ``response`` (nothing is sent).
        """
        frame = encode_reply(to.join_ref, to.ref, to.topic, status,
                             {} if response is None else response)
        return self._link.send(self._ref, to.topic, frame)


# --- routes ------------------------------------------------------------------------------


class ChannelRoutes:
    """Topic patterns → Channel classes, as Phoenix's ``channel "room:*", RoomChannel``.

    A pattern is an exact topic or a prefix ending in ``*``; an exact match wins, then the
    longest prefix.
    """

    __slots__ = ("_exact", "_prefixes", "patterns")

    def __init__(self, channels: Mapping[str, type[Channel]]) -> None:
        if not channels:
            raise InvalidOptionError("channels", channels, "at least one pattern → Channel")
        exact: dict[str, type[Channel]] = {}
        prefixes: list[tuple[str, type[Channel]]] = []
        for pattern, channel_type in channels.items():
            if not (isinstance(channel_type, type) and issubclass(channel_type, Channel)):
                raise InvalidOptionError(f"channels[{pattern!r}]", channel_type,
                                         "a subclass of Channel")
            star = pattern.find("*")
            if star == -1:
                exact[pattern] = channel_type
            elif star == len(pattern) - 1:
                prefixes.append((pattern[:-1], channel_type))
            else:
                raise InvalidOptionError("channels", pattern, "a topic, or a prefix ending in '*'")
        self.patterns: tuple[str, ...] = tuple(channels)
        self._exact = exact
        self._prefixes = sorted(prefixes, key=lambda item: -len(item[0]))

    def match(self, topic: str) -> type[Channel] | None:
        """The Channel class serving ``topic``, or None."""
        found = self._exact.get(topic)
        if found is not None:
            return found
        for prefix, channel_type in self._prefixes:
            if topic.startswith(prefix):
                return channel_type
        return None


__all__ = [
    "JOIN_CRASHED",
    "NOREPLY",
    "UNKNOWN_EVENT",
    "Channel",
    "ChannelEnd",
    "ChannelRoutes",
    "EndReason",
    "JoinRefused",
    "ReplyError",
    "ReplyRef",
    "SocketInfo",
    "channel_end",
]
