"""The WebSocket endpoint: Phoenix channels at ``/socket/websocket`` as a Starlette route.

::

    endpoint = SocketEndpoint({"conversation:*": ConversationChannel},
                              assigns={"sessions": sessions}, options=SocketOptions())
    app = FastAPI()
    app.router.routes.append(endpoint.route())         # ws://host/socket/websocket?vsn=2.0.0

    async with Node([endpoint.child_spec(), ...]):      # the sockets' supervisor
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=4000))
        serving = asyncio.create_task(server.serve())   # started inside the node: see below
        ...                                             # on SIGTERM:
        await endpoint.shutdown(CloseCode.GOING_AWAY)   # 1001 (1012: restart); waits for channels
        server.should_exit = True
        await serving

It is an ASGI route, so the uvicorn server that serves the HTTP API serves the sockets too.
Starlette does what the protocol needs: ``accept(subprotocol=None)`` selects no subprotocol
and ``"phoenix"`` selects that one; a refusal before ``accept`` is an HTTP response (a 403 with
a text body through the ASGI denial-response extension, which uvicorn implements; a bare 403
from servers without it).

**The upgrade.** :func:`~.handshake.read_connect_request` reads ``vsn`` (2.0.x only), the
params and the token (the ``base64url.bearer.phx.`` subprotocol first, then the ``token``
param); the endpoint's ``authenticate`` (default: a
:class:`~beamish.auth.TokenAuthenticator` keyed by ``BEAMISH_SECRET_KEY``) turns it into
a principal. Any failure answers **403** with the reason (never the token). A server that is
shutting down answers 503, one at ``max_sockets`` 503 too. Two things happen before this
handler runs: uvicorn's WebSocket implementation answers 400 to a ``Sec-WebSocket-Protocol``
holding characters outside an HTTP token, such as ``/`` (the base64 of a beamish token never
does: see :mod:`beamish.auth.tokens`), and uvicorn's access log records the URL — a ``token``
param included — so prefer the subprotocol (the JS client's ``authToken``) or keep that log
off.

**Per connection** the ASGI handler task (uvicorn's) starts a
:class:`~.socket_actor.SocketActor` under the endpoint's DynamicSupervisor and reads: it casts
each frame to the socket actor — awaiting the cast, so a busy socket stops reading from its
client. A writer task drains the socket's :class:`~.socket_actor.Outbox` into the WebSocket,
then the close frame the socket decided; it runs only while there is something to write (an
idle connection keeps no task but its handler). An :func:`~beamish.runtime.on_exit` callback
on the socket actor (no task or inbox waits for it) closes with 1011 if the actor dies without
closing (killed). The handler returns once the client is gone, the socket actor is dead, its
channels have finished and the writer has sent what it could.

**Writing without a task.** When the ASGI server offers the ``beamish.websocket.send_nowait``
scope extension — an object whose ``send_nowait(message)`` (:class:`NowaitSender`) sends one
message (str: text, bytes: binary) at once and returns True, or returns False
when the message must go through the ASGI ``send`` (the connection's buffers are full, or it
is closing) — frames are written straight from the outbox as they are queued, and a writer
task starts only for a message that must wait, and the close. ``beamish serve``'s
:class:`~beamish.server.websocket_protocol.LeanWebSocketProtocol` offers it; under any other
server every frame goes through the writer task.

**Reading without a task.** When the ASGI server offers the ``beamish.websocket.deliver``
scope extension — an object whose ``deliver_to(callback, target)`` (:class:`Deliverer`)
hands each received message to ``callback(target, message)`` as it arrives — messages are
cast into the socket actor's mailbox from there (:func:`~beamish.runtime.try_cast`), not by
the handler's task woken for each. A full mailbox refuses one, and the server queues it and
the ones after it for ``receive`` as usual, where the handler casts them in order, waiting
for room.

**Requirements.** The handler starts the socket actor under the endpoint's supervisor, so the
ASGI server must run inside the Node: start uvicorn from inside ``async with Node(...)``
(its connection tasks inherit the node from the task that started it), with
``endpoint.child_spec()`` among the node's children. uvicorn's own ``ws_max_size`` (16 MiB by
default) is a hard cap above ``max_frame_size``: frames between the two are refused by the
socket with a readable close reason, frames above it by uvicorn with a bare 1009.

**Shutdown.** :meth:`SocketEndpoint.shutdown` refuses new upgrades, closes every socket with
the code given (1001 going away, or 1012 service restart — clients reconnect after either),
ends every channel with ``ChannelEnd("closed", code)`` and waits for them. Call it *before*
stopping uvicorn: uvicorn's own shutdown closes WebSockets with 1012 without telling the
application.

Options of :class:`SocketEndpoint` (defaults in brackets): ``channels`` — topic pattern →
Channel class; ``authenticate`` [token auth from ``BEAMISH_SECRET_KEY``]; ``options``
[``SocketOptions()``: idle 60 s, 100 channels, 1 MiB frames, outbound 1024 frames / 8 MiB, no
rate limit, hibernation after 15 s]; ``assigns`` [{}] — values every channel sees as
``socket.assigns``; ``name`` ["beamish.channels.sockets"] — the sockets' supervisor's
node-wide name; ``max_sockets`` [None: no limit]; ``max_sockets_per_user`` [100] — sockets
one principal may hold open at once: one more is refused with HTTP 429 (each socket keeps up
to ``max_channels`` channels, so this bounds what one user keeps in memory; the count of a
user is dropped with the last socket).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from beamish.auth import Authenticator, AuthError, Principal, TokenAuthenticator
from beamish.channels.channel import Channel, ChannelRoutes
from beamish.channels.close_codes import CloseCode
from beamish.channels.errors import HandshakeError, InvalidOptionError
from beamish.channels.handshake import ConnectRequest, read_connect_request
from beamish.channels.limits import OutboundQueue, RateLimiter
from beamish.channels.socket_actor import (
    CloseFrame,
    CloseSocket,
    ConnectionLost,
    Outbox,
    SocketActor,
    SocketInit,
    SocketOptions,
    socket_spec,
)
from beamish.runtime import (
    ActorRef,
    ChildSpec,
    ExitReason,
    NoNodeError,
    NoProcessError,
    TooManyChildrenError,
    cast,
    dynamic_supervisor_spec,
    idle_actor,
    on_exit,
    start_child,
    try_cast,
)
from beamish.runtime.process import current_node

log = logging.getLogger("beamish.channels")

DEFAULT_PATH: Final = "/socket/websocket"
DEFAULT_NAME: Final = "beamish.channels.sockets"
DEFAULT_MAX_SOCKETS_PER_USER: Final = 100
SEND_NOWAIT: Final = "beamish.websocket.send_nowait"
"""The ASGI scope extension that sends a WebSocket message without waiting (see above)."""
DELIVER: Final = "beamish.websocket.deliver"
"""The ASGI scope extension that hands received messages to a callback (see above)."""
SHUTTING_DOWN: Final = "server shutting down"
_NO_CLOSE_CODE: Final = 1005
_ABNORMAL_CLOSE: Final = 1006


class NowaitSender(Protocol):
    """The value of the ``beamish.websocket.send_nowait`` scope extension."""

    def send_nowait(self, message: str | bytes) -> bool:
        """Send ``message`` now; False, having sent nothing, if it must go through ``send``."""
        ...


class Deliverer(Protocol):
    """The value of the ``beamish.websocket.deliver`` scope extension."""

    def deliver_to(self, deliver: Callable[[Any, str | bytes], bool] | None,
                   target: Any = None) -> None:
        """Hand received messages to ``deliver(target, message)`` (False: queue it for
        ``receive``)."""
        ...


class SocketEndpoint:
    """Serves Phoenix channels over WebSockets (see the module docs for the options)."""

    def __init__(
        self,
        channels: Mapping[str, type[Channel]],
        *,
        authenticate: Authenticator | None = None,
        options: SocketOptions | None = None,
        assigns: Mapping[str, Any] | None = None,
        name: str = DEFAULT_NAME,
        max_sockets: int | None = None,
        max_sockets_per_user: int = DEFAULT_MAX_SOCKETS_PER_USER,
    ) -> None:
        if (isinstance(max_sockets_per_user, bool) or not isinstance(max_sockets_per_user, int)
                or max_sockets_per_user < 1):
            raise InvalidOptionError("max_sockets_per_user", max_sockets_per_user,
                                     "an int >= 1")
        self._routes = ChannelRoutes(channels)
        self._authenticate: Authenticator = (
            authenticate if authenticate is not None else TokenAuthenticator()
        )
        self._refusals: tuple[type[Exception], ...] = (HandshakeError, AuthError)
        self.options = options if options is not None else SocketOptions()
        self._assigns: Mapping[str, Any] = MappingProxyType(dict(assigns or {}))
        self.name = name
        self._max_sockets = max_sockets
        rate = self.options.message_rate
        self._limiter = RateLimiter(rate) if rate is not None else None
        self._sockets: set[ActorRef] = set()
        self._max_per_user = max_sockets_per_user
        self._per_user: dict[str, int] = {}  # user id -> sockets open; no entry at 0
        self._drained: asyncio.Event | None = None
        self._closing: CloseSocket | None = None
        self._sent: asyncio.Future[None] | None = None

    # -- mounting ------------------------------------------------------------------------

    def child_spec(self) -> ChildSpec:
        """The sockets' DynamicSupervisor, to put among the Node's children."""
        return dynamic_supervisor_spec(id=self.name, name=self.name,
                                       max_children=self._max_sockets)

    def route(self, path: str = DEFAULT_PATH) -> WebSocketRoute:
        """A Starlette route serving the endpoint at ``path``; add it to the app's routes."""
        return WebSocketRoute(path, self.handle, name="beamish_socket")

    def serve_first(self, app: ASGIApp, path: str = DEFAULT_PATH) -> ASGIApp:
        """``app``, with WebSocket upgrades at ``path`` handed to this endpoint directly.

        What :meth:`route` serves, without going through ``app``'s middleware stack: a
        connection's handler task would keep one frame of each middleware alive for as long
        as the socket is open (several KiB per connection for a FastAPI app). Everything
        else goes to ``app``.
        """
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket" and scope["path"] == path:
                await self.handle(WebSocket(scope, receive, send))
            else:
                await app(scope, receive, send)

        return serve

    @property
    def socket_count(self) -> int:
        """Connections currently served."""
        return len(self._sockets)

    def user_socket_count(self, user_id: str) -> int:
        """Connections currently served for ``user_id``."""
        return self._per_user.get(user_id, 0)

    @property
    def users_connected(self) -> int:
        """Users with at least one connection."""
        return len(self._per_user)

    # -- shutdown ------------------------------------------------------------------------

    async def shutdown(
        self,
        code: CloseCode = CloseCode.GOING_AWAY,
        reason: str = SHUTTING_DOWN,
        *,
        timeout: float = 10.0,
    ) -> bool:
        """Refuse new sockets, close every socket with ``code``, wait until all are gone.

        Returns:
            True once every connection has ended (its channels finished), False if some
            were still open after ``timeout`` seconds (a client that reads nothing).
        """
        self._closing = close = CloseSocket(code, reason)
        for ref in list(self._sockets):
            cast(ref, close)
        if not self._sockets:
            return True
        self._drained = drained = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await drained.wait()
        except TimeoutError:
            log.warning("%d socket(s) still open %g s after the shutdown began",
                        len(self._sockets), timeout)
            return False
        return True

    # -- one connection ------------------------------------------------------------------

    def handle(self, websocket: WebSocket) -> Awaitable[None]:
        """The ASGI WebSocket handler: authenticate, then serve until the connection ends.

        It decides at once and returns the coroutine that answers (a refusal, or the whole
        connection): no frame of its own stays alive while the socket is open.
        """
        scope = websocket.scope
        try:
            request = read_connect_request(scope.get("query_string", b"").decode("latin-1"),
                                           scope.get("subprotocols") or ())
            principal = self._authenticate(request.token, request.params)
        except self._refusals as exc:
            log.debug("refused an upgrade from %s: %s", websocket.client, exc)
            return _deny(websocket, 403, str(exc))
        if self._closing is not None:
            return _deny(websocket, 503, "the server is shutting down; reconnect shortly")
        try:
            current_node()
        except NoNodeError:
            log.error("the channels endpoint needs a running beamish Node: start the ASGI "
                      "server from inside `async with Node([endpoint.child_spec(), ...])`")
            return _deny(websocket, 500, "the server is misconfigured")
        return self._serve(websocket, request, principal)

    async def _serve(
        self, websocket: WebSocket, request: ConnectRequest, principal: Principal
    ) -> None:
        user = principal.user_id
        held = self._per_user.get(user, 0)
        if held >= self._max_per_user:
            await _deny(websocket, 429, f"this user has {held} sockets open, the most allowed; "
                        "close one (or share one socket's channels) and reconnect")
            return
        options = self.options
        outbox = Outbox(OutboundQueue(max_frames=options.outbound_frames,
                                      max_bytes=options.outbound_bytes))
        # The token stays out of what channels see (and might log).
        params = {name: value for name, value in request.params.items() if name != "token"}
        loop = asyncio.get_running_loop()
        if self._sent is None or self._sent.get_loop() is not loop:
            self._sent = loop.create_future()  # done: one for every socket of the endpoint
            self._sent.set_result(None)
        init = SocketInit(principal, params, self._assigns, self._routes, options, outbox,
                          self._sent, self._limiter)
        # Counted before the first await, so concurrent upgrades cannot pass the bound together.
        self._per_user[user] = held + 1
        try:
            ref = await start_child(self.name, socket_spec(init))
        except TooManyChildrenError:
            self._user_left(user)
            await _deny(websocket, 503, "too many connections; reconnect later")
            return
        except NoProcessError:
            self._user_left(user)
            log.error("the channels endpoint %r is not running: add endpoint.child_spec() "
                      "to the Node's children", self.name)
            await _deny(websocket, 503, "the server is not ready; reconnect shortly")
            return
        except BaseException:
            self._user_left(user)
            raise
        extensions = websocket.scope.get("extensions") or {}
        sender: NowaitSender | None = extensions.get(SEND_NOWAIT)
        deliverer: Deliverer | None = extensions.get(DELIVER)
        send_nowait = None if sender is None else sender.send_nowait
        writer = _Writer(websocket, outbox, loop.create_future(), send_nowait)
        watch = on_exit(ref, writer.socket_exited)
        self._sockets.add(ref)
        if self._closing is not None:  # the shutdown began while this socket started
            cast(ref, self._closing)
        code = _ABNORMAL_CLOSE
        try:
            # One frame, not three: a coroutine per connection costs memory for its lifetime.
            try:
                await websocket.accept(subprotocol=request.subprotocol)
                outbox.attach(writer.wake, send_nowait)
                if deliverer is not None:  # messages go to the actor as they arrive
                    deliverer.deliver_to(_deliver, ref)
                receive = websocket.receive
                while True:  # cast each frame to the socket actor, until the client goes
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        code = int(message.get("code") or _NO_CLOSE_CODE)
                        break
                    text = message.get("text")
                    await cast(ref, text if text is not None else message.get("bytes") or b"")
            except (WebSocketDisconnect, OSError):
                pass  # the client left during the handshake
            finally:
                # However the connection ended (a disconnect, an error, a cancellation),
                # nothing more can be sent and the socket actor must not outlive it.
                if deliverer is not None:
                    deliverer.deliver_to(None)
                outbox.abort()
                cast(ref, ConnectionLost(code))
            await writer.exited  # its channels have finished too: the socket waits for them
            await writer.finished()
        finally:
            writer.cancel()  # cancelled meanwhile: nothing more may be written
            watch.cancel()
            self._sockets.discard(ref)
            self._user_left(user)
            if not self._sockets and self._drained is not None:
                self._drained.set()

    def _user_left(self, user: str) -> None:
        """One of ``user``'s sockets is gone (or never started)."""
        left = self._per_user[user] - 1
        if left:
            self._per_user[user] = left
        else:
            del self._per_user[user]  # nothing kept for a user with no socket


class _Writer:
    """Sends the outbox's frames: at once when the server can, else from a task it runs only
    while the outbox has some.

    It also hears of the socket actor's exit (``exited``), which is the connection's end.
    """

    __slots__ = ("_outbox", "_send_nowait", "_task", "_websocket", "exited")

    def __init__(self, websocket: WebSocket, outbox: Outbox, exited: asyncio.Future[None],
                 send_nowait: Callable[[str | bytes], bool] | None = None) -> None:
        self._websocket = websocket
        self._outbox = outbox
        self._send_nowait = send_nowait
        self._task: asyncio.Task[None] | None = None
        self.exited = exited

    def socket_exited(self, _: ActorRef, reason: ExitReason) -> None:
        """The socket actor's on_exit callback: close with 1011 if it died without closing."""
        _close_after_exit(reason, self._outbox)
        self.exited.set_result(None)

    def wake(self) -> None:
        """The outbox has work and no writer: send it now, or start a writer for the rest."""
        first = None
        if (send := self._send_nowait) is not None:
            outbox = self._outbox
            while (first := outbox.take()) is not None:
                if isinstance(first, CloseFrame) or not send(first):
                    break
            else:
                return  # all sent; the outbox wakes us again when work arrives
        self._task = asyncio.get_running_loop().create_task(self._write(first))

    async def finished(self) -> None:
        """Wait for the writer running now, if any (the close frame goes out first)."""
        while (task := self._task) is not None and not task.done():
            await task

    def cancel(self) -> None:
        """Stop the writer running now, if any."""
        if self._task is not None:
            self._task.cancel()

    async def _write(self, item: str | bytes | CloseFrame | None) -> None:
        """Send ``item`` (if any) and the frames after it, then the close, until the outbox
        says there is nothing now."""
        websocket, outbox = self._websocket, self._outbox
        send = websocket.send
        try:
            if item is None:
                item = outbox.take()
            while item is not None:
                if isinstance(item, str):
                    await send({"type": "websocket.send", "text": item})
                elif isinstance(item, bytes):
                    await send({"type": "websocket.send", "bytes": item})
                else:
                    await _close(websocket, item)
                item = outbox.take()
        except WebSocketDisconnect:
            outbox.abort()  # the client is gone; the reader sees the disconnect too


def _deliver(ref: ActorRef, message: str | bytes) -> bool:
    """A received frame: straight to its channel if the idle socket actor can hand it over
    at once (``SocketActor.take_message``), else into the socket actor's mailbox; False
    (delivered nothing) when that is full."""
    actor = idle_actor(ref)
    if (message.__class__ is str and isinstance(actor, SocketActor)
            and actor.take_message(message)):
        return True
    return try_cast(ref, message)


async def _close(websocket: WebSocket, close: CloseFrame) -> None:
    await websocket.send({"type": "websocket.close", "code": close.code, "reason": close.reason})


def _close_after_exit(reason: ExitReason, outbox: Outbox) -> None:
    """The socket actor exited: close with 1011 if it died without closing (a no-op if not)."""
    if reason.is_shutdown:
        outbox.close(CloseCode.GOING_AWAY, SHUTTING_DOWN)
    else:
        outbox.close(CloseCode.INTERNAL_ERROR, "internal error")


async def _deny(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with an HTTP ``status`` and ``message`` as the body."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(message, status_code=status))
    else:
        await websocket.close(code=CloseCode.POLICY_VIOLATION)  # the server answers 403


__all__ = [
    "DEFAULT_MAX_SOCKETS_PER_USER",
    "DEFAULT_NAME",
    "DEFAULT_PATH",
    "SocketEndpoint",
    "SocketOptions",
]
