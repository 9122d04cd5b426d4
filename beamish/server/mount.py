"""All of beamish in a host FastAPI app, from one call: :func:`mount_beamish`.

::

    app = FastAPI()                       # the host's app: its own routes, its own lifespan
    mount_beamish(app)                    # uvicorn host:app

What it adds, for the app's lifetime:

* the HTTP API's routes and error handlers (``install_api``): ``/api/...``, ``/v1/...``,
  ``/health``;
* the Phoenix socket at ``/socket/websocket`` serving ``conversation:*``
  (``beamish.chat.ConversationChannel``) and ``user:*`` (``beamish.chat.UserChannel``, the
  user's job progress), with the ``[server]`` socket limits;
* a lifespan around the host's own: at start it checks the master key (a missing or
  non-Fernet ``BEAMISH_SECRET_KEY`` fails the start, saying how to make one, instead of
  failing requests later), runs a ``beamish.Application`` with the sockets' supervisor among
  its children, sets ``app.state.beamish``, and then runs the host's lifespan inside it. So
  do not also pass ``beamish.lifespan()``: that would run a second application.

The web pages (chat, settings) sit a layer above this one, so they are one more call:
``beamish.web.install_web(app, prefix="/ui")`` after this one (``beamish serve`` serves them
at ``/``). This module keeps the app's ``ConversationHistory`` on ``app.state``
(``CONVERSATIONS_STATE``): the conversations' cache, whose journal stores their messages
(its writer is a child of the application, stopped after the sockets so their last messages
are written), and which the chat page and ``/api/conversations`` flush before they read.

Options (defaults in brackets): ``settings`` [``Settings()`` at start: ``beamish.toml`` and
``BEAMISH_*``], ``auth`` [token auth keyed by the settings' key], ``path``
[``/socket/websocket``].

Why the socket route needs more than ``SocketEndpoint.route()``: a connection's handler must
run inside the application's actor node, and uvicorn starts connection tasks from its own
task, not from the lifespan's. The route runs each connection's handler in a copy of the
context the lifespan had once the application started (where the node is), in a task the
connection's own handler awaits (so cancelling the connection cancels it).

Stopping: uvicorn closes open WebSockets itself (1012, "service restart": phoenix clients
reconnect) before it runs the lifespan's end; then the endpoint ends its channels and the
application stops (usage flushed). ``beamish serve`` (``BeamishServer``) closes them with
1001 first, which a host app cannot, since uvicorn closes them before telling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from beamish.application import Application
from beamish.channels.close_codes import CloseCode
from beamish.channels.endpoint import DEFAULT_PATH, SocketEndpoint
from beamish.channels.limits import RateLimit
from beamish.channels.socket_actor import SocketOptions
from beamish.chat import ConversationChannel, ConversationHistory, JobFeed, UserChannel
from beamish.chat.journal import ConversationJournal
from beamish.server.api.app import install_api, require_secret_key
from beamish.server.api.conversations import CONVERSATIONS_STATE
from beamish.server.api.deps import ApiAuth
from beamish.settings import Settings, load_settings


def conversation_history(settings: Settings,
                         runtime: Application | None = None) -> ConversationHistory:
    """The conversations' history, bounded as ``[server]`` says; with ``runtime``, stored in
    its store through a journal whose writer the caller adds to the runtime's children
    (before the socket endpoint's, so it stops after the channels and writes their last
    messages)."""
    server = settings.server
    journal = None if runtime is None else ConversationJournal(lambda: runtime.store)
    return ConversationHistory(max_messages=server.max_history,
                               max_conversations=server.max_conversations,
                               max_conversations_per_user=server.max_conversations_per_user,
                               max_bytes=server.max_history_bytes, journal=journal,
                               max_stored_messages=server.max_stored_messages,
                               max_stored_chars=server.max_stored_chars,
                               max_stored_conversations_per_user=(
                                   server.max_stored_conversations_per_user))


def add_conversation_writer(runtime: Application, history: ConversationHistory) -> None:
    """Add the history's journal writer to ``runtime``'s children, if it has a journal."""
    if history.journal is not None:
        runtime.add_child(history.journal.child_spec())


def conversation_endpoint(settings: Settings, auth: ApiAuth, runtime: Application,
                          history: ConversationHistory | None = None,
                          job_feed: JobFeed | None = None) -> SocketEndpoint:
    """The Phoenix endpoint serving ``conversation:*`` and ``user:*`` (job progress) with
    ``[server]``'s socket limits (``beamish serve`` and ``mount_beamish`` alike)."""
    server = settings.server
    return SocketEndpoint(
        {"conversation:*": ConversationChannel, "user:*": UserChannel},
        authenticate=auth.authenticator,
        options=SocketOptions(
            idle_timeout=server.idle_timeout_s, max_channels=server.max_channels,
            max_frame_size=server.max_frame_bytes, outbound_frames=server.outbound_frames,
            outbound_bytes=server.outbound_bytes,
            message_rate=RateLimit(server.message_rate_per_s, server.message_burst)),
        assigns={"runtime": runtime,
                 "history": conversation_history(settings) if history is None else history,
                 "job_feed": JobFeed(runtime) if job_feed is None else job_feed},
        max_sockets_per_user=server.max_sockets_per_user)


class _Mounted:
    """The socket endpoint and the node's context while the app runs; None otherwise."""

    def __init__(self, settings: Settings | None, auth: ApiAuth | None) -> None:
        self.settings = settings
        self.auth = auth
        self.endpoint: SocketEndpoint | None = None
        self.context: contextvars.Context | None = None

    @contextlib.asynccontextmanager
    async def running(self, app: FastAPI,
                      host: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        settings = self.settings or load_settings()
        require_secret_key(settings, optional=self.auth is not None and self.auth.dev_mode)
        auth = self.auth or ApiAuth.tokens(settings)
        runtime = Application(settings)
        history = conversation_history(settings, runtime)
        setattr(app.state, CONVERSATIONS_STATE, history)
        add_conversation_writer(runtime, history)
        endpoint = conversation_endpoint(settings, auth, runtime, history)
        runtime.add_child(endpoint.child_spec())
        async with runtime:
            app.state.beamish = runtime
            # The lifespan's context now holds the node: connections run in copies of it.
            self.endpoint, self.context = endpoint, contextvars.copy_context()
            try:
                async with host(app) as state:
                    yield {**(state or {}), "beamish": runtime}
            finally:
                self.endpoint = self.context = None
                await endpoint.shutdown(CloseCode.GOING_AWAY,
                                        timeout=settings.server.shutdown_timeout_s)

    async def serve_socket(self, websocket: WebSocket) -> None:
        endpoint, context = self.endpoint, self.context
        if endpoint is None or context is None:
            await websocket.close(code=CloseCode.SERVICE_RESTART,
                                  reason="beamish is not running; reconnect shortly")
            return
        context = context.copy()  # each connection's own: what one sets stays its own
        answer = context.run(endpoint.handle, websocket)

        async def connection() -> None:
            await answer

        await asyncio.create_task(connection(), context=context)


def mount_beamish(app: FastAPI, settings: Settings | None = None, *,
                  auth: ApiAuth | None = None, path: str = DEFAULT_PATH) -> None:
    """Add beamish's HTTP API, its Phoenix socket and its runtime to ``app``.

    See the module docstring. Call it once, before the app starts.

    Args:
        app: the host app (its own lifespan, if any, runs inside beamish's).
        settings: beamish's settings (``Settings()`` when the app starts, if None).
        auth: how HTTP callers and sockets are authenticated (token auth keyed by the
            settings' ``secret_key``, i.e. ``BEAMISH_SECRET_KEY``, if None).
        path: where the socket is served.
    """
    mounted = _Mounted(settings, auth)
    install_api(app, auth=auth)
    host = app.router.lifespan_context

    def lifespan(started: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return mounted.running(started, host)

    app.router.lifespan_context = lifespan
    app.router.routes.append(WebSocketRoute(path, mounted.serve_socket, name="beamish_socket"))


__all__ = ["CONVERSATIONS_STATE", "add_conversation_writer", "conversation_endpoint",
           "conversation_history", "mount_beamish"]
