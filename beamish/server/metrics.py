"""``GET /metrics``: what ``beamish serve`` is doing, in Prometheus' text format.

Counted as it happens (O(1) per event, in ``prometheus_client``'s own children):

* ``beamish_http_requests_total{route,method,status}`` and
  ``beamish_http_request_duration_seconds{route,method}`` — every HTTP request (``route`` is
  the route's template, ``/api/sessions/{session_id}``, so ids never become labels; a path
  no route matches is ``<unmatched>``). Counted by ``beamish.server.access``.
* ``beamish_llm_requests_total{provider,model,task_type,endpoint,outcome}``,
  ``beamish_llm_tokens_total{provider,model,task_type,kind}`` (``kind``: ``prompt`` or
  ``completion``) and ``beamish_llm_request_duration_seconds{provider,model,task_type,outcome}``
  — every LLM request, from the entries of ``beamish.request_log``.

Read when scraped (:class:`RuntimeCollector`, nothing kept up to date in between):

* ``beamish_runtime_up`` — 1 while the runtime runs (the rest below is left out when 0).
* ``beamish_sessions_live``; ``beamish_sockets_open``; ``beamish_channels_joined``.
* ``beamish_actors{type}``; ``beamish_mailbox_depth_max`` and ``beamish_mailbox_depth_total``
  over all live actors; ``beamish_actor_restarts{type}`` — restarts of the live children of
  that type by their supervisors (from ``Node.actors()``).
* ``beamish_usage_recorder_backlog`` — usage events accepted and not yet written.
* ``beamish_store_stalled`` (0/1) and ``beamish_store_stalled_seconds`` — when the store says
  it has stalled (``stalled_since``, a ``time.monotonic()`` reading, or None), else absent.

**Access.** ``/metrics`` needs an admin token, unless ``[server] metrics_public`` is true
(for a scraper on a private network that holds no token). Each ``ServerMetrics`` has its own
registry: two servers in one process (tests) do not share counters; the LLM counters of a
process count every server's requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Final, NamedTuple

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from beamish.application import Application
from beamish.request_log import LLMRequestLog, observe_llm_requests
from beamish.server.api.deps import _bearer, get_admin, get_principal
from beamish.server.api.errors import ERROR_RESPONSES

PATH: Final = "/metrics"

#: Seconds; from a cached answer (a few ms) to a long completion (minutes).
HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                       10.0, 30.0, 60.0)
LLM_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                      60.0, 120.0, 300.0)


MAX_CACHED_LABELS: Final = 10_000
"""How many kinds of LLM request keep their labelled children at hand."""


class _LLMChildren(NamedTuple):
    """The labelled children one kind of LLM request counts into."""

    requests: Counter
    duration: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter


class ServerMetrics:
    """The counters of one server, in their own registry (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "beamish_http_requests", "HTTP requests answered, by route, method and status.",
            ("route", "method", "status"), registry=self.registry)
        self.http_duration = Histogram(
            "beamish_http_request_duration_seconds", "HTTP request latency, in seconds.",
            ("route", "method"), buckets=HTTP_BUCKETS, registry=self.registry)
        self.llm_requests = Counter(
            "beamish_llm_requests", "LLM requests, by provider, model, task type and outcome.",
            ("provider", "model", "task_type", "endpoint", "outcome"), registry=self.registry)
        self.llm_tokens = Counter(
            "beamish_llm_tokens", "Tokens of LLM requests (kind: prompt or completion).",
            ("provider", "model", "task_type", "kind"), registry=self.registry)
        self.llm_duration = Histogram(
            "beamish_llm_request_duration_seconds", "LLM request latency, in seconds.",
            ("provider", "model", "task_type", "outcome"), buckets=LLM_BUCKETS,
            registry=self.registry)
        # The labelled children of one kind of LLM request, looked up once: ``labels()``
        # checks and joins its values under a lock on every call, several times a request.
        self._llm_children: dict[tuple[str, str, str, str, str], _LLMChildren] = {}

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        self.http_requests.labels(route, method, _STATUS.get(status) or str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def observe_llm(self, entry: LLMRequestLog) -> None:
        """Count one LLM request (an observer of ``beamish.request_log``)."""
        key = (entry.provider or "none", entry.model or "none", entry.task_type,
               entry.endpoint, entry.outcome)
        children = self._llm_children.get(key)
        if children is None:
            children = self._llm_children_of(key)
        children.requests.inc()
        children.duration.observe(entry.latency_ms / 1000)
        if entry.prompt_tokens:
            children.prompt_tokens.inc(entry.prompt_tokens)
        if entry.completion_tokens:
            children.completion_tokens.inc(entry.completion_tokens)

    def _llm_children_of(self, key: tuple[str, str, str, str, str]) -> _LLMChildren:
        provider, model, task_type, endpoint, outcome = key
        if len(self._llm_children) >= MAX_CACHED_LABELS:
            self._llm_children.clear()  # the children stay in the registry; only the lookup goes
        children = self._llm_children[key] = _LLMChildren(
            self.llm_requests.labels(provider, model, task_type, endpoint, outcome),
            self.llm_duration.labels(provider, model, task_type, outcome),
            self.llm_tokens.labels(provider, model, task_type, "prompt"),
            self.llm_tokens.labels(provider, model, task_type, "completion"))
        return children

    def watch_llm_requests(self) -> Callable[[], None]:
        """Count every LLM request from now on; return the function that stops it."""
        return observe_llm_requests(self.observe_llm)

    def exposition(self) -> bytes:
        """Everything in the registry, in Prometheus' text format."""
        return generate_latest(self.registry)


# The status label of the usual statuses, made once (not a new str per request).
_STATUS: Final = {code: str(code) for code in range(100, 600)}


@dataclass(frozen=True, slots=True)
class RuntimeCollector(Collector):
    """The gauges read at scrape time from the runtime and the socket endpoint.

    Attributes:
        runtime: the server's application.
        sockets: the number of open sockets (``SocketEndpoint.socket_count``).
        channel_types: the class names of the channel actors (joined channels are counted
            among the live actors by these names).
    """

    runtime: Application
    sockets: Callable[[], int]
    channel_types: frozenset[str]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, as they are now."""
        try:
            services, node = self.runtime.services, self.runtime.node
        except RuntimeError:  # not running: say so, and nothing else
            yield _gauge("beamish_runtime_up", "1 while the runtime runs.", 0)
            return
        yield _gauge("beamish_runtime_up", "1 while the runtime runs.", 1)
        yield _gauge("beamish_sessions_live", "Open sessions.", self.runtime.sessions.count())
        yield _gauge("beamish_sockets_open", "Open WebSocket connections.", self.sockets())
        yield from self._actors(node.actors())
        recorder = services.recorder
        yield _gauge("beamish_usage_recorder_backlog",
                     "Usage events accepted and not yet written to the ledger.",
                     0 if recorder is None else recorder.buffered)
        yield from _store_stall(self.runtime.store)

    def _actors(self, actors: Iterable[Any]) -> Iterator[GaugeMetricFamily]:
        counts: dict[str, int] = {}
        restarts: dict[str, int] = {}
        deepest = total = joined = 0
        for actor in actors:
            counts[actor.type] = counts.get(actor.type, 0) + 1
            restarts[actor.type] = restarts.get(actor.type, 0) + actor.restart_count
            deepest = max(deepest, actor.mailbox_depth)
            total += actor.mailbox_depth
            joined += actor.type in self.channel_types
        yield _gauge("beamish_channels_joined", "Channels joined on open sockets.", joined)
        yield _gauge("beamish_mailbox_depth_max", "The deepest mailbox of a live actor.", deepest)
        yield _gauge("beamish_mailbox_depth_total", "Messages waiting in all mailboxes.", total)
        yield _by_type("beamish_actors", "Live actors, by type.", counts)
        yield _by_type("beamish_actor_restarts",
                       "Restarts of live actors by their supervisors, by type.", restarts)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_type(name: str, documentation: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=("type",))
    for actor_type, value in sorted(values.items()):
        family.add_metric((actor_type,), value)
    return family


def _store_stall(store: object) -> Iterator[GaugeMetricFamily]:
    # A store that does not track stalls has no such attribute: no gauge then.
    if not hasattr(store, "stalled_since"):
        return
    since = getattr(store, "stalled_since", None)
    yield _gauge("beamish_store_stalled", "1 while a store operation is stalled.",
                 0 if since is None else 1)
    yield _gauge("beamish_store_stalled_seconds", "How long the current store stall has lasted.",
                 0.0 if since is None else max(0.0, time.monotonic() - float(since)))


def install_metrics(app: FastAPI, metrics: ServerMetrics, *, public: bool) -> None:
    """Add ``GET /metrics`` to ``app``: admin only, unless ``public``."""

    async def admin_only(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if not public:  # 401 without a valid token, 403 without the admin scope
            await get_admin(await get_principal(request, credentials))

    @app.get(PATH, include_in_schema=True, tags=["metrics"], summary="Prometheus metrics",
             response_class=Response, dependencies=[Depends(admin_only)],
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **ERROR_RESPONSES})
    async def metrics_endpoint() -> Response:
        """The server's metrics in Prometheus' text format (admin token, unless
        ``[server] metrics_public``)."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


__all__ = ["PATH", "RuntimeCollector", "ServerMetrics", "install_metrics"]
