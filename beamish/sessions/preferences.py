"""``PreferenceTable``: the sessions' cached preferences, readable without a call.

Each session context keeps the preferences it resolved, one ``ResolvedConfig`` per task type,
in a dict that is part of its state, and publishes that dict here under its ``SessionKey`` (an
:class:`~beamish.sessions.tables.OwnedTable`), so :meth:`beamish.sessions.Sessions.enhance`
answers a warm session without a round trip through the context's mailbox. Only the owning
context adds to its dict.

What clears these dicts, and why a context that was resolving while a config changed must
not cache what it got (:attr:`PreferenceTable.generation`): see
:mod:`beamish.sessions.config_cache`, which describes every cache layer of configuration.
"""

from __future__ import annotations

from collections.abc import Iterable

from beamish.llm.hierarchy import ResolvedConfig
from beamish.sessions.expiry import SessionKey
from beamish.sessions.tables import OwnedTable


class PreferenceTable(OwnedTable[SessionKey, dict[str, ResolvedConfig]]):
    """Session key → the context's cached preferences (task type → ``ResolvedConfig``)."""

    __slots__ = ("generation",)

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0
        """How many invalidations there have been."""

    def cached(self, key: SessionKey, task_type: str) -> ResolvedConfig | None:
        """The cached preferences of a session for ``task_type``, or None."""
        preferences = self._entries.get(key)
        return None if preferences is None else preferences.get(task_type)

    def invalidate(self, keys: Iterable[SessionKey] | None) -> None:
        """Forget what these sessions cached (None: every session's)."""
        self.generation += 1
        if keys is None:
            for preferences in self._entries.values():
                preferences.clear()
            return
        for key in keys:
            cached = self._entries.get(key)
            if cached is not None:
                cached.clear()
