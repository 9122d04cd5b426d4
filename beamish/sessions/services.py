"""What the session layer's actors share, and the names they are found by.

The Application owns the resources (the store, the LLM client, the idle queue) and builds one
``Services`` for its node. Actors that own a replaceable part publish it here when they
start and withdraw it when they stop: the usage recorder actor sets ``recorder``, the config
cache actor sets ``resolver``. Client code therefore always reaches the *current* instance,
also after a restart, and gets a clear error while there is none.

Actor names are node-local: ``SESSIONS`` (Registry, unique: session id → context, value the
user id), ``SESSIONS_BY_USER`` (Registry, duplicate: user id → contexts), ``SESSION_SUP``
(DynamicSupervisor of the contexts), ``JANITOR``, ``USAGE_RECORDER``, ``CONFIG_CACHE``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from beamish.llm.providers.client import LLMClient
from beamish.llm.resolver import ConfigResolver
from beamish.llm.settings import LLMSettings
from beamish.runtime import ActorRef, Node, Registry
from beamish.sessions.counters import UsageCounters
from beamish.sessions.errors import RuntimeNotRunningError
from beamish.sessions.expiry import IdleQueue
from beamish.sessions.preferences import PreferenceTable
from beamish.sessions.settings import SessionSettings
from beamish.store import Store, UsageRecorder

RECORDER_WAIT_S = 5.0
"""How long usage waits for a restarting recorder before failing (not acknowledged)."""

SESSIONS = "beamish.sessions"
SESSIONS_BY_USER = "beamish.sessions_by_user"
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
    idle: IdleQueue[str] = field(init=False)
    preferences: PreferenceTable = field(init=False)
    """What the session contexts cached, readable without a call to them."""
    usage: UsageCounters = field(init=False)
    """The session contexts' usage totals, counted into without a message to them."""
    recorder: UsageRecorder | None = None
    resolver: ConfigResolver | None = None
    _recorder_up: asyncio.Event = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.idle = IdleQueue(self.settings.ttl_s)
        self.preferences = PreferenceTable()
        self.usage = UsageCounters()
        self._recorder_up = asyncio.Event()

    def publish_recorder(self, recorder: UsageRecorder) -> None:
        """Make ``recorder`` the one usage is recorded through."""
        self.recorder = recorder
        self._recorder_up.set()

    def withdraw_recorder(self, recorder: UsageRecorder) -> None:
        """``recorder`` is closing: take no more usage through it."""
        if self.recorder is recorder:
            self.recorder = None
            self._recorder_up.clear()

    async def wait_recorder(self, timeout: float = RECORDER_WAIT_S) -> UsageRecorder:
        """The running usage recorder, waiting up to ``timeout`` s while it restarts."""
        if self.recorder is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._recorder_up.wait()
        return self.current_recorder()

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


def session_entry(services: Services, session_id: str) -> tuple[ActorRef, str] | None:
    """(context, user id) of an open session, or None."""
    entries = Registry.lookup(services.whereis(SESSIONS), session_id)
    return entries[0] if entries else None
