"""Every exception ``beamish.sessions`` raises (store and LLM errors pass through unchanged)::

    SessionError
    ├── SessionNotFoundError     no open session with that id (it closed or expired)
    ├── SessionOwnerError        the session belongs to another user
    ├── SessionAmbiguousError    no user named, and several users have a session of that id
    ├── SessionLimitError        the session limit (global or the user's) is reached and no
    │                            idle session can be evicted
    └── RuntimeNotRunningError   the beamish Application is not started (or already stopped)
"""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error raised by ``beamish.sessions``."""


class SessionNotFoundError(SessionError, LookupError):
    """No open session has this id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} is not open (closed, expired or never "
                         "opened); open it with sessions.open(session_id, user_id)")
        self.session_id = session_id


class SessionOwnerError(SessionError, PermissionError):
    """A session was asked for on behalf of a user who does not own it."""

    def __init__(self, session_id: str, user_id: str) -> None:
        super().__init__(f"session {session_id!r} does not belong to user {user_id!r}")
        self.session_id = session_id
        self.user_id = user_id


class SessionAmbiguousError(SessionError, LookupError):
    """A session id was given without a user, and more than one user has it open."""

    def __init__(self, session_id: str, user_ids: list[str]) -> None:
        super().__init__(f"session {session_id!r} is open for {len(user_ids)} users "
                         f"({', '.join(map(repr, sorted(user_ids)))}); session ids are per "
                         "user: name the user (user_id)")
        self.session_id = session_id
        self.user_ids = sorted(user_ids)


class SessionLimitError(SessionError):
    """``max_sessions`` sessions are open (or ``user_id``'s ``max_sessions_per_user``) and
    every one that could make room has a request in flight or a joined socket."""

    def __init__(self, limit: int, user_id: str | None = None) -> None:
        if user_id is None:
            message = (f"all {limit} sessions are busy (max_sessions={limit}); retry shortly "
                       "or raise BEAMISH_SESSIONS__MAX_SESSIONS")
        else:
            message = (f"all {limit} sessions of user {user_id!r} are busy or joined by a "
                       f"socket (max_sessions_per_user={limit}); close one of them, retry "
                       "shortly or raise BEAMISH_SESSIONS__MAX_SESSIONS_PER_USER")
        super().__init__(message)
        self.limit = limit
        self.user_id = user_id


class RuntimeNotRunningError(SessionError):
    """The runtime that owns the sessions is not running."""
