"""The socket actor: one per WebSocket connection, owning its PhoenixSocket and its channels.

::

    connection reader ──cast str/bytes──▶ SocketActor ──cast──▶ Channel actors (one per topic)
    connection writer ◀──── Outbox ◀──── SocketActor ◀──cast─── push / reply frames

The actor models the connection's state (a :class:`~.socket_state.PhoenixSocket`), its
failure domain (the channels it supervises, linked) and its serialisation point (every
frame to the client passes through it, so pushes, replies and protocol frames keep one order).
It never touches the network: the transport's reader casts it each frame, and its frames go
into an :class:`Outbox` that the transport's writer drains.

What it does, by event:

- **A join** starts the matching :class:`~.channel.Channel`, linked to this socket (which
  traps exits: it is the channels' supervisor, each channel a ``temporary`` child), and asks it
  to ``join``. Pushes the channel makes while joining are held and follow the ok reply.
- **A message** to a joined topic takes a token from the user's rate bucket (if a
  ``message_rate`` is set; else ``rate_limited`` error reply) and goes to the channel — or,
  when the channel's mailbox is full (its class's ``mailbox_size``, or ``mailbox_bytes`` of
  messages as received), is answered
  ``overloaded`` without spending a token: the socket never waits for a channel. While the
  socket is idle, the transport hands such a message over as it reads it
  (:meth:`SocketActor.take_message`, which the socket's task uses for each text frame too),
  without a step of the socket's task: a chat message costs one actor step, not two.
- **A channel's frame** goes out only while that channel is the topic's current one: frames of
  a channel that was left or superseded are dropped.
- **A channel's exit**: a crash sends ``phx_error`` (the client rejoins); a deliberate stop
  sends ``phx_close``; a death before its join was answered answers ``join crashed``.
- **Idle**: no frame for ``idle_timeout`` seconds closes with 1001 (the client reconnects).
- **Slow consumer**: when the outbox is full (``outbound_frames`` / ``outbound_bytes``) the
  queued frames are dropped and the socket closes with 1008 ``slow consumer: ...``.
- **Closing** for any reason ends every channel with a
  :class:`~.channel.ChannelEnd` saying why (so the application can still record usage), then
  the actor stops and, in ``terminate``, waits for its channels to finish. A crash of the
  socket itself closes with 1011; a shutdown by its supervisor with 1001.

Options (:class:`SocketOptions`, defaults in brackets): ``idle_timeout`` [60.0] s;
``max_channels`` [100]; ``max_frame_size`` [1 MiB] (None: no limit beyond the server's own);
``max_topic_bytes`` [256], ``max_ref_bytes`` [64] and ``max_event_bytes`` [64] — the bounds
of a frame's header fields — and ``max_join_size`` [64 KiB] (see :mod:`.socket_state`); a
joined channel's params are dropped once its join is answered;
``outbound_frames`` [1024] and ``outbound_bytes`` [8 MiB]; ``message_rate`` [None: no limit]
— a :class:`~.limits.RateLimit` shared by all sockets of one user; ``hibernate_after``
[15.0] — seconds without a message after which the socket actor and its channels
hibernate (drop their tasks and mailboxes), None for never.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from beamish.channels.channel import (
    JOIN_CRASHED,
    Channel,
    ChannelEnd,
    ChannelIn,
    ChannelInit,
    ChannelOut,
    ChannelRoutes,
    EndChannel,
    FrameLink,
    JoinChannel,
    JoinResult,
    SocketInfo,
)
from beamish.channels.close_codes import CloseCode
from beamish.channels.errors import EncodeError, InvalidOptionError
from beamish.channels.frames import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_REF_BYTES,
    DEFAULT_MAX_TOPIC_BYTES,
)
from beamish.channels.idle import DEFAULT_IDLE_TIMEOUT, Idleness
from beamish.channels.limits import (
    DEFAULT_OUTBOUND_BYTES,
    DEFAULT_OUTBOUND_FRAMES,
    RATE_LIMITED,
    OutboundQueue,
    RateLimit,
    RateLimiter,
    rate_limited_response,
)
from beamish.channels.socket_state import (
    DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_JOIN_SIZE,
    FrameRejected,
    JoinRequested,
    Left,
    Message,
    PhoenixSocket,
    SocketState,
)
from beamish.runtime import (
    SHUTDOWN,
    Actor,
    ActorRef,
    CallError,
    ChildSpec,
    Exit,
    ExitReason,
    MailboxFullError,
    Timer,
    cast,
    child_spec,
    idle_actor,
    send_after,
    start,
    try_cast,
)
from beamish.runtime.exits import shutdown
from beamish.runtime.links import exit as exit_signal
from beamish.runtime.supervisor import await_shutdown, signal_shutdown

if TYPE_CHECKING:
    from beamish.auth import Principal

log = logging.getLogger("beamish.channels")

SLOW_CONSUMER: Final = "slow consumer"
DEFAULT_HIBERNATE_AFTER: Final = 15.0
OVERLOADED: Final = "overloaded"
_JOIN_CRASHED_RESPONSE: Final = {"reason": JOIN_CRASHED}
_IDLE_CHECK: Final = "beamish.channels.idle_check"


@dataclass(frozen=True, slots=True)
class SocketOptions:
    """Limits of one socket (see the module docs for each, with its default)."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_channels: int = DEFAULT_MAX_CHANNELS
    max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE
    outbound_frames: int = DEFAULT_OUTBOUND_FRAMES
    outbound_bytes: int = DEFAULT_OUTBOUND_BYTES
    message_rate: RateLimit | None = None
    hibernate_after: float | None = DEFAULT_HIBERNATE_AFTER
    max_topic_bytes: int = DEFAULT_MAX_TOPIC_BYTES
    max_ref_bytes: int = DEFAULT_MAX_REF_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_join_size: int = DEFAULT_MAX_JOIN_SIZE

    def __post_init__(self) -> None:
        # Building the parts once checks every option where it is defined.
        Idleness(0.0, timeout=self.idle_timeout)
        PhoenixSocket(max_channels=self.max_channels, max_frame_size=self.max_frame_size,
                      max_topic_bytes=self.max_topic_bytes, max_ref_bytes=self.max_ref_bytes,
                      max_event_bytes=self.max_event_bytes, max_join_size=self.max_join_size)
        OutboundQueue(max_frames=self.outbound_frames, max_bytes=self.outbound_bytes)
        if self.message_rate is not None and not isinstance(self.message_rate, RateLimit):
            raise InvalidOptionError("message_rate", self.message_rate, "a RateLimit or None")
        wait = self.hibernate_after
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, int | float)
                                 or not math.isfinite(wait) or wait < 0):
            raise InvalidOptionError("hibernate_after", wait, "None or finite seconds >= 0")


# --- the outbox: frames on their way to the transport's writer ----------------------------


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """The last item of an outbox: close the WebSocket with ``code`` and ``reason``."""

    code: int
    reason: str


class Outbox:
    """A bounded :class:`OutboundQueue` plus the close to send after it, drained by a writer.

    The socket actor puts frames and decides the close. The transport runs a writer only
    while there is something to write: :meth:`attach` gives the outbox a ``wake`` callback,
    called when work arrives and no writer is running; the writer then calls :meth:`take`
    until it returns None, sending each frame. An idle connection keeps no writer task.

    A writer that took a frame and has not come back is inside a send that waits for the
    connection's buffers to drain (:attr:`writer_blocked`): a send to a connection that can
    take it does not suspend.

    Attached with a ``send_now`` too, a frame put while no writer runs (so nothing is queued)
    is sent with it at once, and queued only if it refuses (see ``NowaitSender``).
    """

    # The socket's waiter is a future made only while it waits: an idle connection keeps no
    # asyncio.Event (and its deque) around.
    __slots__ = ("_closing", "_done", "_in_flight", "_progress", "_queue", "_send_now", "_wake",
                 "_writing")

    def __init__(self, queue: OutboundQueue) -> None:
        self._queue = queue
        self._wake: Callable[[], None] | None = None
        self._send_now: Callable[[str | bytes], bool] | None = None
        self._writing = False  # a writer is running (woken and not yet told None)
        self._progress: asyncio.Future[None] | None = None  # the socket, waiting for room
        self._closing: CloseFrame | None = None
        self._done = False
        self._in_flight = False

    @property
    def closing(self) -> CloseFrame | None:
        """The close decided so far, or None."""
        return self._closing

    @property
    def writer_blocked(self) -> bool:
        """Whether the writer waits inside a send: the client reads slower than we write."""
        return self._in_flight

    def attach(self, wake: Callable[[], None],
               send_now: Callable[[str | bytes], bool] | None = None) -> None:
        """Start writers with ``wake`` from now on (at once if something already waits), and
        send with ``send_now`` while none runs."""
        self._wake = wake
        self._send_now = send_now
        if not self._done and (len(self._queue) or self._closing is not None):
            self._wake_writer()

    def put(self, frame: str | bytes) -> bool:
        """Queue ``frame``; False if the queue is full. Dropped once closing or aborted."""
        if self._closing is not None or self._done:
            return True
        # Attached and no writer running: nothing is queued, so the frame may go at once.
        if not self._writing and (send := self._send_now) is not None and send(frame):
            return True
        if not self._queue.put(frame):
            return False
        self._wake_writer()
        return True

    async def progress(self) -> None:
        """Wait until the writer takes a frame, or the connection is gone."""
        if self._done:
            return
        waiter = self._progress = asyncio.get_running_loop().create_future()
        await waiter

    def describe(self) -> str:
        """What is waiting, for a close reason."""
        return self._queue.describe()

    def close(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Send what is queued (unless ``discard``), then close; the first close wins."""
        if self._closing is not None or self._done:
            return
        if discard:
            self._queue.clear()
        self._closing = CloseFrame(int(code), reason)
        self._wake_writer()

    def abort(self) -> None:
        """The connection is gone: drop everything; the writer stops without a close."""
        self._done = True
        self._queue.clear()
        self._made_progress()

    def take(self) -> str | bytes | CloseFrame | None:
        """For the writer: the next frame, then the close; None when there is nothing now.

        After None the writer stops; the outbox wakes a new one when work arrives.
        """
        self._in_flight = False
        if self._done:
            self._writing = False
            return None
        frame = self._queue.pop()
        if frame is not None:
            self._in_flight = True
            self._made_progress()
            return frame
        if self._closing is not None:
            self._done = True
            return self._closing
        self._writing = False
        return None

    def _wake_writer(self) -> None:
        if not self._writing and self._wake is not None:
            self._writing = True
            self._wake()

    def _made_progress(self) -> None:
        waiter = self._progress
        if waiter is not None:
            self._progress = None
            if not waiter.done():
                waiter.set_result(None)


# --- messages to the socket actor -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Close the connection with ``code`` and ``reason`` (server shutdown, an admin's kick)."""

    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The transport lost the connection; ``code`` is the client's close code (1006: none)."""

    code: int


@dataclass(frozen=True, slots=True)
class SocketInit:
    """The argument of :class:`SocketActor`'s ``init``."""

    principal: Principal
    params: Mapping[str, str]
    assigns: Mapping[str, Any]
    routes: ChannelRoutes
    options: SocketOptions
    outbox: Outbox
    #: A done future, shared by the endpoint's sockets: what a frame sent straight to the
    #: outbox returns (see ``FrameLink``).
    sent: asyncio.Future[None]
    limiter: RateLimiter | None = None


@dataclass(slots=True)
class _Entry:
    """One channel actor of this socket."""

    topic: str
    request: JoinRequested
    shutdown: int  # ms its terminate may take when the socket stops it
    link: FrameLink
    mailbox_bytes: int  # its class's bound on the bytes of messages waiting for it
    joined: bool = False
    early: list[str | bytes] = field(default_factory=list)


def _without_params(request: JoinRequested) -> JoinRequested:
    """``request`` without its params: what a joined channel's bookkeeping keeps."""
    return JoinRequested(request.topic, request.join_ref, request.ref, {})


def socket_spec(init: SocketInit) -> ChildSpec:
    """The child spec of a socket actor (temporary: a client reconnects, it is not restarted).

    Its shutdown is ``infinity`` as for a supervisor: ``terminate`` only waits for its
    channels (its children), each bounded by its own ``shutdown_timeout``.
    """
    return child_spec(SocketActor, init, id="socket", restart="temporary",
                      shutdown="infinity", type="supervisor",
                      hibernate_after=init.options.hibernate_after)


class SocketActor(Actor):
    """One client connection (see the module docs). Started by the transport, not by hand."""

    async def init(self, arg: SocketInit) -> None:
        self.trap_exit()
        options = arg.options
        self._sock = PhoenixSocket(max_channels=options.max_channels,
                                   max_frame_size=options.max_frame_size,
                                   topics=arg.routes.patterns,
                                   max_topic_bytes=options.max_topic_bytes,
                                   max_ref_bytes=options.max_ref_bytes,
                                   max_event_bytes=options.max_event_bytes,
                                   max_join_size=options.max_join_size)
        self._info = SocketInfo(self._ref.id, arg.principal, arg.params, arg.assigns)
        self._routes = arg.routes
        self._outbox = arg.outbox
        self._limiter = arg.limiter
        self._max_early = options.outbound_frames
        self._hibernate_after = options.hibernate_after
        self._clock: Callable[[], float] = asyncio.get_running_loop().time
        self._sent = arg.sent
        self._idle = Idleness(self._clock(), timeout=options.idle_timeout)
        self._idle_timer: Timer = send_after(self._ref, _IDLE_CHECK, options.idle_timeout)
        self._channels: dict[ActorRef, _Entry] = {}
        self._current: dict[str, ActorRef] = {}  # topic -> the channel serving or joining it
        self._lost_code: int | None = None
        self._finished = False
        self._inbound_size = 0  # bytes of the frame being handled

    # -- input ---------------------------------------------------------------------------

    async def handle_cast(self, request: Any) -> None:
        kind = request.__class__
        if kind is str:
            if self.take_message(request):
                return
            self._idle.frame_received(self._clock())
            self._inbound_size = len(request)  # the size of the Message it may make
            self._sock.receive_text(request)
        elif kind is ChannelOut:
            await self._channel_out(request)
            if self._sock.state is SocketState.OPEN:
                return
        elif kind is bytes:
            self._idle.frame_received(self._clock())
            self._inbound_size = len(request)
            self._sock.receive_bytes(request)
        elif kind is JoinResult:
            await self._join_result(request)
        elif kind is CloseSocket:
            self._sock.close(request.code, request.reason)
        elif kind is ConnectionLost:
            self._outbox.abort()
            self._lost_code = request.code
            self._sock.connection_lost()
        else:
            raise CallError(f"a socket does not handle {request!r}")
        await self._pump()

    def take_message(self, text: str) -> bool:
        """Hand a client's text frame to its channel at once if it is a message to a joined
        channel with room for it; False, having done nothing, for any other frame (the
        ``handle_cast`` of the frame deals with it, and says why a message was refused).

        ``handle_cast`` starts so with every text frame. While the actor is idle
        (``beamish.runtime.idle_actor``) the transport's delivery calls it too, as each frame
        is read, outside this actor's task: one actor step sooner; it casts the frames this
        leaves.
        """
        message = self._sock.message_in(text)
        channel = None if message is None else self._current.get(message.topic)
        if message is None or channel is None:
            return False
        now = self._clock()
        if self._hand_over(channel, message, now, len(text)) is not None:
            return False  # nothing done: the slow way answers why
        self._idle.frame_received(now)
        return True

    async def handle_info(self, message: Any) -> None:
        if message is _IDLE_CHECK:
            self._check_idle()
        elif isinstance(message, Exit):
            self._channel_exit(message)
        await self._pump()

    async def _pump(self) -> None:
        """Hand the socket's events to the channels and its frames to the outbox."""
        sock = self._sock
        while True:
            events = sock.events_received()
            for event in events:
                if isinstance(event, Message):
                    self._message(event)
                elif isinstance(event, JoinRequested):
                    await self._join(event)
                elif isinstance(event, Left):
                    self._left(event)
                elif isinstance(event, FrameRejected):
                    log.info("socket %d: %s", self._info.id, event.error)
            await self._flush()
            if not events:
                break
        if sock.state is not SocketState.OPEN and not self._finished:
            self._close_out()
            self.stop()

    async def _flush(self) -> None:
        for frame in self._sock.frames_to_send():
            if not await self._put(frame):
                return

    async def _put(self, frame: str | bytes) -> bool:
        """Queue ``frame`` for the writer; False if the client is a slow consumer (closed)."""
        outbox = self._outbox
        if outbox.put(frame):
            return True
        # Full. If the writer is stuck in a send, the client does not keep up: close. If it
        # merely has not run since a burst of frames, let it drain and try again.
        while not outbox.writer_blocked:
            await outbox.progress()
            if outbox.put(frame):
                return True
        self._slow_consumer()
        return False

    # -- channels ------------------------------------------------------------------------

    async def _join(self, request: JoinRequested) -> None:
        superseded = self._current.get(request.topic)
        if superseded is not None:  # a join still undecided: a joined one got a Left first
            self._end(superseded, ChannelEnd("duplicate_join"))
        channel_type = self._routes.match(request.topic)
        assert channel_type is not None, "PhoenixSocket(topics=...) only lets routed joins in"
        link = FrameLink(self._ref, self._sent)
        init = ChannelInit(self._ref, request, self._info, link)
        try:
            # Linked: this socket supervises its channels itself. They are temporary children,
            # so a DynamicSupervisor per socket would add nothing but ~5 KiB a connection.
            # overflow="fail": the socket never waits for a channel (one that
            # awaits its own pushes while the socket waited for it would deadlock both).
            ref = await start(channel_type, init, link=True,
                              mailbox_size=channel_type.mailbox_size, overflow="fail",
                              hibernate_after=self._hibernate_after)
        except Exception:
            log.exception("socket %d: cannot start %s for %r", self._info.id,
                          channel_type.__name__, request.topic)
            self._sock.reject_join(request, dict(_JOIN_CRASHED_RESPONSE))
            return
        self._channels[ref] = _Entry(request.topic, request, channel_type.shutdown_timeout, link,
                                     channel_type.mailbox_bytes)
        self._current[request.topic] = ref
        cast(ref, JoinChannel())

    async def _join_result(self, result: JoinResult) -> None:
        sender = result.sender
        entry = self._channels.get(sender)
        if entry is None or self._current.get(entry.topic) is not sender:
            return  # ended meanwhile; it was told so
        sock = self._sock
        try:
            if not result.accepted:
                del self._current[entry.topic]  # it stops by itself
                sock.reject_join(entry.request, result.response)
                return
            answered = sock.accept_join(entry.request, result.response)
        except EncodeError as exc:
            log.error("socket %d: join response of %r cannot be sent: %s", self._info.id,
                      entry.topic, exc)
            sock.reject_join(entry.request, dict(_JOIN_CRASHED_RESPONSE))
            answered = False
        if not answered:
            self._end(sender, ChannelEnd("abandoned"))
            return
        entry.joined = True
        entry.request = _without_params(entry.request)  # only its join_ref is needed now
        early, entry.early = entry.early, []
        await self._flush()  # the ok reply first, then what the channel pushed while joining
        for frame in early:
            if not await self._put(frame):
                return
        if self._current.get(entry.topic) is sender and self._sock.state is SocketState.OPEN:
            entry.link.direct = self._outbox  # its frames may skip this mailbox from now on

    def _message(self, message: Message) -> None:
        ref = self._current.get(message.topic)
        if ref is None:
            return
        now = self._clock()
        size = self._inbound_size
        refused = self._hand_over(ref, message, now, size)
        if refused == RATE_LIMITED:
            assert self._limiter is not None
            response = rate_limited_response(self._limiter.retry_after(self._info.user_id, now))
            self._sock.reply(message, response, status="error")
        elif refused == OVERLOADED:
            waiting = (f"{ref.mailbox_depth} messages" if not ref.has_room else
                       f"{self._channels[ref].link.inbound_bytes} bytes of messages")
            self._sock.reply(message, {
                "reason": OVERLOADED,
                "detail": f"{message.topic} has {waiting} waiting; "
                          "wait for replies before sending more",
            }, status="error")

    def _hand_over(self, channel: ActorRef, message: Message, now: float,
                   size: int) -> str | None:
        """Hand ``message`` (``size`` bytes as received) to ``channel``: None once it has it,
        else why not, having done nothing — ``overloaded`` (a mailbox full by count or by
        bytes: no token is spent on it) or ``rate_limited`` (the user's bucket is empty).

        An idle channel whose ``handle_in`` is a plain ``def`` answers it at once
        (``Channel.take_message``); otherwise it is cast.
        """
        if not channel.has_room:
            return OVERLOADED
        entry = self._channels[channel]
        link = entry.link
        if link.inbound_bytes and link.inbound_bytes + size > entry.mailbox_bytes:
            return OVERLOADED
        limiter = self._limiter
        if limiter is not None and not limiter.allow(self._info.user_id, now):
            return RATE_LIMITED
        actor = idle_actor(channel)
        if not (isinstance(actor, Channel) and actor.take_message(message)):
            link.inbound_bytes += size
            try_cast(channel, ChannelIn(message, size))  # it has room: in at once
        return None

    async def _channel_out(self, out: ChannelOut) -> None:
        sender = out.sender
        entry = self._channels.get(sender)
        if entry is None:
            return  # gone: its frames are stale
        try:
            if self._current.get(out.topic) is not sender:
                return  # left, superseded or closed: its frames are stale
            if entry.joined:
                await self._put(out.frame)
                return
            entry.early.append(out.frame)
            if len(entry.early) > self._max_early:
                self._slow_consumer()
        finally:
            # Only now, with the frame in the outbox: the link may not overtake it.
            entry.link.handled()

    def _left(self, event: Left) -> None:
        if event.reason == "closed":
            return  # closing ends every channel at once (_close_out)
        ref = self._current.get(event.topic)
        if ref is not None and self._channels[ref].request.join_ref == event.join_ref:
            self._end(ref, ChannelEnd(event.reason))

    def _end(self, ref: ActorRef, end: ChannelEnd) -> None:
        entry = self._channels.get(ref)
        if entry is not None:
            entry.link.close()
            if self._current.get(entry.topic) is ref:
                del self._current[entry.topic]
        try:
            cast(ref, EndChannel(end))
        except MailboxFullError:
            # A system delivery: the channel traps exits, and its handle_info stops with
            # this reason, ChannelEnd and all.
            exit_signal(ref, shutdown(end))

    def _channel_exit(self, exited: Exit) -> None:
        entry = self._channels.pop(exited.actor, None)
        if entry is None:
            return  # no channel of this socket
        entry.link.close()
        if self._current.get(entry.topic) is not exited.actor:
            return  # it had been ended: its exit needs no answer
        del self._current[entry.topic]
        if not entry.joined:
            self._sock.reject_join(entry.request, dict(_JOIN_CRASHED_RESPONSE))
        elif exited.reason.is_shutdown:
            self._sock.close_channel(entry.topic)  # it stopped on purpose: no rejoin
        else:
            self._sock.channel_crashed(entry.topic)  # phx_error: the client rejoins

    # -- the connection ------------------------------------------------------------------

    def _check_idle(self) -> None:
        now = self._clock()
        if self._idle.is_idle(now):
            self._sock.close(CloseCode.GOING_AWAY, self._idle.reason)
        else:
            self._idle_timer = send_after(self._ref, _IDLE_CHECK, self._idle.remaining(now))

    def _slow_consumer(self) -> None:
        if self._sock.state is not SocketState.OPEN:
            return
        reason = f"{SLOW_CONSUMER}: {self._outbox.describe()} unsent"
        log.warning("socket %d (user %s): %s; closing", self._info.id, self._info.user_id, reason)
        self._sock.close(CloseCode.POLICY_VIOLATION, reason)
        self._outbox.close(CloseCode.POLICY_VIOLATION, self._sock.close_reason, discard=True)

    def _close_out(self) -> None:
        """The socket is closing or gone: end every channel, and close the outbox."""
        self._finished = True
        self._idle_timer.cancel()
        sock = self._sock
        sock.events_received()  # Left("closed") for each joined channel: all end below
        if sock.close_code is not None:
            # What was queued before the close still goes out first, room permitting.
            for frame in sock.frames_to_send():
                if not self._outbox.put(frame):
                    break
            end = ChannelEnd("closed", int(sock.close_code), sock.close_reason)
            self._outbox.close(sock.close_code, sock.close_reason)
        else:
            end = ChannelEnd("disconnected", self._lost_code)
            self._outbox.abort()
        for ref in list(self._current.values()):
            self._end(ref, end)

    async def terminate(self, reason: ExitReason) -> None:
        if not self._finished:
            # A crash here (1011) or a shutdown by the supervisor (1001): tell the client.
            if reason.is_shutdown:
                self._sock.close(CloseCode.GOING_AWAY, "server shutting down")
            else:
                self._sock.close(CloseCode.INTERNAL_ERROR, "internal error")
            self._close_out()
        # Wait for the channels' terminate (usage recording...) before this socket is gone,
        # each for up to its shutdown_timeout, as a supervisor would.
        channels, self._channels = self._channels, {}
        stopping = [(ref, entry.shutdown, dead) for ref, entry in channels.items()
                    if (dead := signal_shutdown(ref, entry.shutdown, SHUTDOWN)) is not None]
        if stopping:
            await asyncio.gather(*(await_shutdown(ref, how, dead) for ref, how, dead in stopping))

    def _tree_children(self) -> list[tuple[Hashable, ActorRef | None, int]]:
        """For Node.tree(): this socket supervises its channels, one per topic."""
        return [(entry.topic, ref, 0) for ref, entry in self._channels.items()]


__all__ = [
    "OVERLOADED",
    "SLOW_CONSUMER",
    "CloseFrame",
    "CloseSocket",
    "ConnectionLost",
    "Outbox",
    "SocketActor",
    "SocketInit",
    "SocketOptions",
    "socket_spec",
]

