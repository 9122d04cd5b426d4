"""``BeamishServer``: the runtime, the HTTP API and the conversation sockets on one port.

``beamish serve`` is this class plus signal handling::

    async with BeamishServer(Settings()) as server:       # listening when entered
        print(server.url)                                  # http://127.0.0.1:4000
        await server.wait()                                # until stop() or SIGTERM

What runs, in one process and one event loop: a ``beamish.Application`` (store, LLM client,
session tree) whose root supervisor also owns the sockets' supervisor; a FastAPI app with the
whole HTTP API (``beamish.server.api``) and the Phoenix socket at ``/socket/websocket`` serving
``conversation:*`` (``beamish.chat.conversation``); uvicorn, started from inside the
runtime's task so that its connection tasks run inside the actor node.

Stopping (``stop()``; ``beamish serve`` calls it on SIGTERM/SIGINT) goes in order: new
sockets are refused and open ones closed with 1001 (or 1012 with ``restart=True``) so the
phoenix client reconnects elsewhere, their channels end — streams in flight record their
partial usage — then uvicorn stops accepting and finishes its requests, then the runtime stops:
sessions, then the usage recorder writes everything queued, then the store closes.

The whole stop has one deadline, ``[server] shutdown_timeout_s`` from its start, also while
the database is down or locked: the usage recorder retries only until then
(``Application.stop_within``), requests still running at the deadline are cancelled, and
usage that could not be written is reported lost, by count, at ERROR (``0 usage events
lost`` at INFO otherwise). ``wait()`` also returns when the runtime's root supervisor exits
for good, so the process stops rather than answer 503 to everything; ``failed`` is then True
and ``beamish serve`` exits 1, so a process supervisor (systemd, Docker, Kubernetes) restarts
it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import logging
import re
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Literal, Self

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from beamish.application import Application
from beamish.auth import RevocationList, dev_mode_warning
from beamish.channels.close_codes import CloseCode
from beamish.chat import ConversationChannel, JobFeed
from beamish.llm.scrub import ScrubbingFormatter, scrub
from beamish.request_log import LOGGER_NAME, TextStream, write_request_lines
from beamish.server.access import AccessObserver
from beamish.server.api import create_app
from beamish.server.api.deps import ApiAuth
from beamish.server.connection_guard import ConnectionGuard, GuardOptions, raise_fd_limit
from beamish.server.logging_json import JsonFormatter
from beamish.server.metrics import RuntimeCollector, ServerMetrics, install_metrics
from beamish.server.mount import (
    CONVERSATIONS_STATE,
    add_conversation_writer,
    conversation_endpoint,
    conversation_history,
)
from beamish.server.revocations import NAME as REVOCATIONS
from beamish.server.revocations import RefresherInit, RevocationRefresher, refresh_now
from beamish.server.websocket_adapter import websocket_protocol
from beamish.settings import Settings

log = logging.getLogger("beamish.server")

_TOKEN_PARAM = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Masks ``token=...`` in log records: uvicorn logs each WebSocket URL it accepts."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN_PARAM.sub(r"\1***", message), ()
        return True


#: The collector's thresholds while serving (CPython's defaults: 700, 10, 10).
SERVING_GC_THRESHOLDS: Final = (10_000, 20, 20)

#: How often a thread waiting for the GIL gets it from a busy one while serving, in seconds
#: (CPython's default: 0.005).
SERVING_SWITCH_INTERVAL_S: Final = 0.0001


def tune_for_serving() -> None:
    """Set the garbage collector and the GIL up for a long-running server; ``beamish serve``
    calls it.

    Once the server has started: collect, then freeze what exists — modules, the app, the
    runtime's tree, objects that live as long as the process — so that no later collection
    walks them again, and raise the thresholds, since a chat round trip allocates hundreds of
    short-lived objects that reference counting frees anyway. Without this, full collections
    pause the server for tens of milliseconds, which is what its tail latency shows.

    And shorten the GIL's switch interval: SQLite runs in its own thread, which takes the GIL
    back several times per commit of usage (after each SQLite step and reset, each write to
    the loop's self-pipe, each wake from its queue); with the event loop busy, each time it
    waits for one of the loop's system calls or for the whole interval, so a commit takes
    several times its thread's work, and the answers waiting for that commit leave the loop
    idle. The benchmark of channels chose the value (``bench/RESULTS.md``).

    It changes the whole process: an application embedding beamish decides this for itself.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    sys.setswitchinterval(SERVING_SWITCH_INTERVAL_S)


EventLoopChoice = Literal["auto", "asyncio", "uvloop"]


def serving_event_loop(choice: EventLoopChoice) -> tuple[Callable[[], asyncio.AbstractEventLoop],
                                                         str]:
    """The factory of the event loop ``beamish serve`` runs on, and its name for the log
    (``[server] event_loop``): uvloop when asked for or, with ``auto``, when it imports;
    else the standard library's loop.

    Raises:
        ImportError: ``uvloop`` was asked for and cannot be imported.
    """
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop, f"uvloop {importlib.metadata.version('uvloop')}"
    return asyncio.new_event_loop, "asyncio"


SERVING_LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""The format of ``beamish serve``'s log lines."""


def configure_serving_logs(stream: TextStream | None = None, *,
                           request_log: bool = True, json: bool = False) -> None:
    """Log as ``beamish serve`` does: INFO and up to ``stream`` (stderr), as
    ``SERVING_LOG_FORMAT`` — among them one JSON line per LLM request
    (``beamish.request_log``), unless ``request_log`` is False (``[server]
    request_log``).

    The request log has a line for every chat message, so it is written cheaply: by a
    ``RequestLineWriter``, in the same format, rather than as records (a record costs a
    sizeable share of a chat round trip's CPU; ``bench/RESULTS.md``). Other records skip what
    the format never shows — the thread, the process, the asyncio task and the caller's file
    and line, which logging otherwise looks up for every record (the "Optimization" section
    of Python's logging HOWTO).

    With ``json`` (``--log-format json``), every line is one JSON object instead
    (``beamish.server.logging_json``), the request log's lines too.

    Like ``tune_for_serving``, it changes the whole process: an application embedding
    beamish configures its own logging.
    """
    stream = sys.stderr if stream is None else stream
    if json:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_ScrubbingJsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.basicConfig(level=logging.INFO, format=SERVING_LOG_FORMAT, stream=stream)
    # Every line is scrubbed of anything key-like, a configured key's fragments included.
    for root_handler in logging.getLogger().handlers:
        if type(root_handler.formatter) is logging.Formatter:
            root_handler.setFormatter(ScrubbingFormatter(SERVING_LOG_FORMAT))
    write_request_lines(stream, json=json)
    if not request_log:  # failed requests' lines are WARNINGs: leave those out too
        logging.getLogger(LOGGER_NAME).setLevel(logging.ERROR)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False
    logging._srcfile = None  # the HOWTO's way to skip finding the caller


class _ScrubbingJsonFormatter(JsonFormatter):
    """JSON lines, scrubbed of anything key-like as the text lines are."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _redact_uvicorn_logs() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class BeamishServer:
    """Serves beamish until stopped; see the module docstring.

    Args:
        settings: everything (``[server]`` says where to listen and the socket limits).
        port: overrides ``settings.server.port`` (0 picks a free port; see ``port``).
        installs: callables given the FastAPI app before it serves, each adding routes.
    """

    def __init__(self, settings: Settings, *, port: int | None = None,
                 installs: Sequence[Callable[[FastAPI], None]] = ()) -> None:
        self.settings = settings
        #: Called with the app before it serves, to add routes (``beamish serve`` adds the
        #: web app, ``beamish.web.install_web``, which sits above this layer).
        self.installs = tuple(installs)
        server = settings.server
        self._port = server.port if port is None else port
        # One authenticator for HTTP callers and sockets alike.
        self.revoked = RevocationList()
        self.auth = (ApiAuth.development(server.host, settings) if server.dev_mode
                     else ApiAuth.tokens(settings, revoked=self.revoked))
        self.runtime = Application(settings)
        self.runtime.add_child(RevocationRefresher.child_spec(
            RefresherInit(self.runtime, self.revoked), id="revocations", name=REVOCATIONS))
        self.history = conversation_history(settings, self.runtime)
        add_conversation_writer(self.runtime, self.history)
        self.job_feed = JobFeed(self.runtime)  # the user channels' one job listener
        self.endpoint = conversation_endpoint(settings, self.auth, self.runtime, self.history,
                                              self.job_feed)
        self.runtime.add_child(self.endpoint.child_spec())
        self.metrics = ServerMetrics()
        self.metrics.registry.register(RuntimeCollector(
            self.runtime, lambda: self.endpoint.socket_count,
            frozenset({ConversationChannel.__name__})))
        self._stop_llm_metrics: Callable[[], None] | None = None
        self._uvicorn: uvicorn.Server | None = None
        self.connections: ConnectionGuard | None = None
        """Connection caps and deadlines, once listening (``server.connection_guard``)."""
        self._stop = asyncio.Event()
        self._close_code = CloseCode.GOING_AWAY
        self._root_exited = False

    @property
    def port(self) -> int:
        """The port listened on (the real one once entered, also when 0 was asked)."""
        if self._uvicorn is not None and self._uvicorn.servers:
            sockets = self._uvicorn.servers[0].sockets
            if sockets:
                return int(sockets[0].getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.settings.server.host}:{self.port}"

    async def __aenter__(self) -> Self:
        settings = self.settings.server
        _redact_uvicorn_logs()
        if settings.dev_mode:
            log.warning("%s", dev_mode_warning(settings.host))
        await self.runtime.__aenter__()
        await refresh_now(self.runtime, self.revoked)  # revoked tokens refused from the start
        self._stop_llm_metrics = self.metrics.watch_llm_requests()
        try:
            await self._start_http(self._app())
        except BaseException:
            if self.connections is not None:
                self.connections.uninstall()
            if self._stop_llm_metrics is not None:
                self._stop_llm_metrics()
            await self.runtime.__aexit__(None, None, None)
            raise
        log.info("beamish listening on %s (database %s)", self.url,
                 self.settings.database_url.split("@")[-1])
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        timeout = self.settings.server.shutdown_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.runtime.running:
            self.runtime.stop_within(timeout)
        try:
            await self.endpoint.shutdown(self._close_code, timeout=timeout)
            if self._uvicorn is not None:
                # Requests still running at the deadline are cancelled (uvicorn logs how many).
                # (uvicorn annotates it int, but uses it as asyncio.timeout's seconds.)
                self._uvicorn.config.timeout_graceful_shutdown = max(  # type: ignore[assignment]
                    deadline - loop.time(), 0.0)
                await self._uvicorn.shutdown()
        finally:
            if self.connections is not None:
                self.connections.uninstall()
            if self._stop_llm_metrics is not None:
                self._stop_llm_metrics()
            await self.runtime.__aexit__(exc_type, exc, tb)

    def stop(self, *, restart: bool = False) -> None:
        """Ask the server to stop (1012 "service restart" to clients with ``restart``)."""
        self._close_code = CloseCode.SERVICE_RESTART if restart else CloseCode.GOING_AWAY
        self._stop.set()

    @property
    def failed(self) -> bool:
        """Whether ``wait()`` returned because the runtime's root supervisor exited for good
        (not because ``stop()`` was called): the process should exit non-zero."""
        return self._root_exited

    async def wait(self) -> None:
        """Return once ``stop()`` was called, or the runtime's root supervisor exited
        (``failed`` then says so)."""
        node = self.runtime.node
        stopped = asyncio.ensure_future(self._stop.wait())
        root_down = asyncio.ensure_future(node.wait())
        try:
            await asyncio.wait((stopped, root_down), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stopped, root_down):
                waiter.cancel()
        if not self._stop.is_set():
            self._root_exited = True
            log.error("the beamish runtime's root supervisor exited (restart intensity "
                      "exceeded); stopping the server")

    def _app(self) -> ASGIApp:
        app = create_app(runtime=self.runtime, auth=self.auth)
        install_metrics(app, self.metrics, public=self.settings.server.metrics_public)
        setattr(app.state, CONVERSATIONS_STATE, self.history)
        for install in self.installs:
            install(app)
        app.router.routes.append(self.endpoint.route())
        return AccessObserver(app, self.metrics)

    async def _start_http(self, app: ASGIApp) -> None:
        # Memory per socket: upgrades skip the app's middleware (serve_first); no
        # permessage-deflate (a zlib context per socket, for short JSON frames); no
        # WebSocket pings from uvicorn — Phoenix heartbeats and the idle timeout find dead
        # clients already, without a timer per connection; and no handshake kept per socket
        # (LeanWebSocketProtocol: nor uvicorn's queue and event deques), when the installed
        # uvicorn is one it was verified with (websocket_adapter).
        # Connections: uvicorn's own HTTP protocol behind the guard (caps at accept, first
        # request and handshake deadlines); keep-alive is uvicorn's own timeout.
        guard = self._guard_connections()
        config = uvicorn.Config(self.endpoint.serve_first(app),
                                host=self.settings.server.host, port=self._port,
                                lifespan="off", log_config=None, access_log=False,
                                ws_max_size=self.settings.server.max_frame_bytes * 2,
                                ws_per_message_deflate=False, ws_ping_interval=None,
                                ws=websocket_protocol(),
                                http=guard.protocol_class(AutoHTTPProtocol),
                                timeout_keep_alive=self.settings.server.keep_alive_timeout_s)
        config.load()
        server = uvicorn.Server(config)
        # serve() would also capture signals and own the loop; startup()/shutdown() leave
        # both to us, so stopping can close the sockets first (see the module docstring).
        server.lifespan = config.lifespan_class(config)
        # Started here, in the runtime's task: connection tasks inherit the actor node.
        await server.startup()
        if server.should_exit:  # uvicorn could not bind; it logged why
            raise OSError(f"cannot listen on {self.settings.server.host}:{self._port}")
        self._uvicorn = server

    def _guard_connections(self) -> ConnectionGuard:
        """The connection guard, its exception handler installed; the fd limit raised."""
        server = self.settings.server
        options = GuardOptions.from_settings(server, raise_fd_limit())
        self.connections = guard = ConnectionGuard(options)
        guard.install(asyncio.get_running_loop())
        log.info("connections: at most %d open, %s per client address; first request "
                 "within %g s, WebSocket handshake within %g s, keep-alive %d s",
                 options.max_connections, options.max_connections_per_ip or "no cap",
                 options.header_timeout_s, options.handshake_timeout_s,
                 server.keep_alive_timeout_s)
        return guard

