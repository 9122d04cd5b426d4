"""What the session layer's actors share, and the names they are found by.

The Application owns the resources (the store, the LLM client, the idle queue) and builds one
``Services`` for its node. Actors that own a replaceable part publish it here when they
start and withdraw it when they stop: the usage recorder actor sets ``recorder``, the config
cache actor sets ``resolver``. Client code therefore always reaches the *current* instance,
also after a restart, and gets a clear error while there is none.

Actor names are node-local: ``SESSIONS`` (Registry, unique: ``SessionKey`` (user id,
session id) → context), ``SESSIONS_BY_USER`` (Registry, duplicate: user id → contexts, value
the session id), ``SESSIONS_BY_ID`` (Registry, duplicate: session id → contexts, value the
user id; for callers that name no user), ``SESSION_SUP`` (DynamicSupervisor of the contexts),
``JANITOR``, ``USAGE_RECORDER``, ``CONFIG_CACHE``.

Session ids are per user: two users' sessions called ``s1`` are two sessions, and neither
user can reach, refuse or evict the other's by its id.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from beamish.llm.providers.client import LLMClient
from beamish.llm.resolver import ConfigResolver
from beamish.llm.settings import LLMSettings
from beamish.runtime import ActorRef, Node, Registry
from beamish.sessions.counters import UsageCounters
from beamish.sessions.errors import RuntimeNotRunningError, SessionAmbiguousError
from beamish.sessions.expiry import IdleQueue, SessionCensus, SessionKey
from beamish.sessions.preferences import PreferenceTable
from beamish.sessions.settings import SessionSettings
from beamish.store import (
    RecorderClosedError,
    Store,
    UsageBackpressureError,
    UsageEvent,
    UsageRecorder,
)

RECORDER_WAIT_S = 5.0
"""How long a caller waits for a restarting recorder before failing (not acknowledged; the
usage stays parked and is written when the recorder is back)."""

SESSIONS = "beamish.sessions"
SESSIONS_BY_USER = "beamish.sessions_by_user"
SESSIONS_BY_ID = "beamish.sessions_by_id"
SESSION_SUP = "beamish.session_sup"
JANITOR = "beamish.janitor"
USAGE_RECORDER = "beamish.usage_recorder"
CONFIG_CACHE = "beamish.config_cache"


@dataclass(eq=False)
class Services:
    """Shared resources and the current instances of replaceable parts."""

    node: Node
    store: Store
    llm: LLMClient
    settings: SessionSettings
    llm_settings: LLMSettings
    clock: Callable[[], float]
    """Seconds, monotonic: the node's loop time (idleness and expiry are measured in it)."""
    idle: IdleQueue[SessionKey] = field(init=False)
    census: SessionCensus = field(init=False)
    """Each user's open sessions, counted by the contexts themselves."""
    preferences: PreferenceTable = field(init=False)
    """What the session contexts cached, readable without a call to them."""
    usage: UsageCounters = field(init=False)
    """The session contexts' usage totals, counted into without a message to them."""
    recorder: UsageRecorder | None = None
    resolver: ConfigResolver | None = None
    shutdown_deadline: float | None = None
    """Loop time by which stopping must be done (``Application.stop_within``), if any."""
    stopped_recorders: list[UsageRecorder] = field(default_factory=list)
    """Recorders that have stopped; their ``lost`` counts are read when the runtime stops
    (``usage_lost``), after the store has closed: an event a recorder gave up on that the
    store committed all the same is then no longer counted."""
    _parked: deque[tuple[UsageEvent, asyncio.Future[bool]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.idle = IdleQueue(self.settings.ttl_s)
        self.census = SessionCensus(self.settings.max_sessions_per_user)
        self.preferences = PreferenceTable()
        self.usage = UsageCounters()
        self._parked = deque()

    def publish_recorder(self, recorder: UsageRecorder) -> None:
        """Make ``recorder`` the one usage is recorded through, and hand it what was parked
        while there was none."""
        self.recorder = recorder
        parked, self._parked = self._parked, deque()
        for event, future in parked:
            if future.done():  # failed by close_parked: nobody takes it any more
                continue
            try:
                submitted = recorder.submit(event)
            except Exception as error:  # backpressure: the caller learns, as with submit
                future.set_exception(error)
            else:
                submitted.add_done_callback(functools.partial(_settle, future))

    def park(self, event: UsageEvent) -> asyncio.Future[bool]:
        """Hold ``event`` until a recorder is published (the recorder is restarting), and
        return the future of its outcome: it is written once the recorder is back, whether
        or not anyone waits, so a cancelled call hands its usage over this way too.

        Raises:
            UsageBackpressureError: ``usage_buffer`` events are parked already.
        """
        if len(self._parked) >= self.settings.usage_buffer:
            raise UsageBackpressureError(
                f"{len(self._parked)} usage events wait for the usage recorder to restart; "
                "retry the request later")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._parked.append((event, future))
        return future

    def close_parked(self) -> int:
        """Fail what is still parked (the runtime stops with no recorder); the count lost."""
        parked, self._parked = self._parked, deque()
        for _, future in parked:
            if not future.done():
                future.set_exception(RecorderClosedError(
                    "the runtime stopped while the usage recorder was restarting"))
        return len(parked)

    @property
    def usage_lost(self) -> int:
        """Usage events the stopped recorders could not write (reported at stop)."""
        return sum(recorder.lost for recorder in self.stopped_recorders)

    def withdraw_recorder(self, recorder: UsageRecorder) -> None:
        """``recorder`` is closing: take no more usage through it."""
        if self.recorder is recorder:
            self.recorder = None

    def whereis(self, name: str) -> ActorRef:
        """The live actor registered as ``name`` on this runtime's node."""
        ref = self.node.whereis(name)
        if ref is None:
            raise RuntimeNotRunningError(
                f"{name} is not running: use the sessions inside 'async with Application(...)'")
        return ref

    def current_recorder(self) -> UsageRecorder:
        """The running usage recorder."""
        if self.recorder is None:
            raise RuntimeNotRunningError("the usage recorder is not running (restarting, or "
                                         "the runtime is stopped); retry the request")
        return self.recorder

    def current_resolver(self) -> ConfigResolver:
        """The running config resolver."""
        if self.resolver is None:
            raise RuntimeNotRunningError("the config cache is not running (restarting, or "
                                         "the runtime is stopped); retry the request")
        return self.resolver


def _settle(future: asyncio.Future[bool], submitted: asyncio.Future[bool]) -> None:
    """Pass a parked event's outcome on to the future its caller holds."""
    if future.done():
        return
    if submitted.cancelled():
        future.cancel()
    elif (error := submitted.exception()) is not None:
        future.set_exception(error)
    else:
        future.set_result(submitted.result())


def session_entry(services: Services, session_id: str,
                  user_id: str | None = None) -> tuple[ActorRef, SessionKey] | None:
    """(context, key) of ``user_id``'s open session ``session_id``, or None.

    With no ``user_id`` (trusted code, an admin): the one user's who has it open.

    Raises:
        SessionAmbiguousError: no ``user_id``, and several users have it open.
    """
    if user_id is not None:
        key = (user_id, session_id)
        ref = Registry.whereis(services.whereis(SESSIONS), key)
        return None if ref is None else (ref, key)
    entries = Registry.lookup(services.whereis(SESSIONS_BY_ID), session_id)
    if not entries:
        return None
    if len(entries) > 1:
        raise SessionAmbiguousError(session_id, [str(owner) for _, owner in entries])
    ref, owner = entries[0]
    return ref, (owner, session_id)
