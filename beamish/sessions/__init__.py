"""Per-session context actors, the janitor and the usage recorder (built on :mod:`beamish.runtime`).

One supervised actor per chat session (:class:`SessionContext`) caches the user's resolved LLM
preferences per task type, enhances each request with them and counts the session's usage; a
:class:`Janitor` expires sessions idle past their TTL and evicts the least recently active at
the session limit. Use them through :class:`Sessions` and :class:`Users` — ``rt.sessions`` and
``rt.users`` of a running ``beamish.Application``, which also shows the whole supervision tree.

Modules: :mod:`.api` (client API), :mod:`.context` (the session actor), :mod:`.janitor`,
:mod:`.recorder` (the usage recorder actor), :mod:`.config_cache` (the config cache actor, and
how resolved configuration is cached and invalidated), :mod:`.preferences` and
:mod:`.counters` (the contexts' cached preferences and usage totals, readable without a call,
both :mod:`.tables`), :mod:`.expiry` (the sans-I/O idle queue), :mod:`.services` (shared
handles, names), :mod:`.settings`, :mod:`.models`, :mod:`.errors`.
"""

from beamish.sessions.api import SessionHold, Sessions, Users
from beamish.sessions.config_cache import ConfigCache
from beamish.sessions.context import SessionContext
from beamish.sessions.errors import (
    RuntimeNotRunningError,
    SessionAmbiguousError,
    SessionError,
    SessionLimitError,
    SessionNotFoundError,
    SessionOwnerError,
)
from beamish.sessions.expiry import IdleQueue, SessionCensus, SessionKey
from beamish.sessions.janitor import Janitor
from beamish.sessions.models import JanitorReport, SessionInfo
from beamish.sessions.recorder import UsageRecorderActor
from beamish.sessions.services import Services
from beamish.sessions.settings import SessionSettings

__all__ = [
    "ConfigCache", "IdleQueue", "Janitor", "JanitorReport", "RuntimeNotRunningError",
    "SessionAmbiguousError", "SessionCensus", "SessionContext", "SessionError", "SessionHold",
    "SessionInfo", "SessionKey", "SessionLimitError", "SessionNotFoundError",
    "SessionOwnerError", "SessionSettings", "Sessions", "Services", "UsageRecorderActor",
    "Users",
]
