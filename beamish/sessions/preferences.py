"""``PreferenceTable``: the sessions' cached preferences, readable without a call.

Each session context keeps the preferences it resolved, one ``ResolvedConfig`` per task type,
in a dict that is part of its state. It publishes that dict here under its session id, so
:meth:`beamish.sessions.Sessions.enhance` answers a warm session without a round trip through
the context's mailbox — as an Erlang process publishes into an ETS table it owns. Only the
owning context adds to its dict, and its entry goes when it exits (however it exits).

A config write clears the dicts of the user's sessions right away (:meth:`invalidate`, called
in the task that wrote, before the write returns), so a read after the write never sees the
old preferences. A context that was resolving while a write happened must not cache what it
got, since the resolution may predate the write: :attr:`generation` counts invalidations, and
a context caches a resolution only if none happened since it started.
"""

from __future__ import annotations

from collections.abc import Iterable

from beamish.llm.resolution import ResolvedConfig


class PreferenceTable:
    """Session id → the context's cached preferences (task type → ``ResolvedConfig``)."""

    __slots__ = ("_by_session", "generation")

    def __init__(self) -> None:
        self._by_session: dict[str, dict[str, ResolvedConfig]] = {}
        self.generation = 0
        """How many invalidations there have been."""

    def __len__(self) -> int:
        return len(self._by_session)

    def publish(self, session_id: str, preferences: dict[str, ResolvedConfig]) -> None:
        """The context of ``session_id`` caches into ``preferences`` from now on."""
        self._by_session[session_id] = preferences

    def withdraw(self, session_id: str, preferences: dict[str, ResolvedConfig]) -> None:
        """That context exited: forget its dict (not a newer context's under the same id)."""
        if self._by_session.get(session_id) is preferences:
            del self._by_session[session_id]

    def get(self, session_id: str, task_type: str) -> ResolvedConfig | None:
        """The cached preferences of a session for ``task_type``, or None."""
        preferences = self._by_session.get(session_id)
        return None if preferences is None else preferences.get(task_type)

    def invalidate(self, session_ids: Iterable[str] | None) -> None:
        """Forget what these sessions cached (None: every session's)."""
        self.generation += 1
        if session_ids is None:
            for preferences in self._by_session.values():
                preferences.clear()
            return
        for session_id in session_ids:
            cached = self._by_session.get(session_id)
            if cached is not None:
                cached.clear()
