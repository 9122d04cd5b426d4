"""Every exception ``beamish.sessions`` raises (store and LLM errors pass through unchanged)::

    SessionError
    ├── SessionNotFoundError     no open session with that id (it closed or expired)
    ├── SessionOwnerError        the session belongs to another user
    ├── SessionLimitError        the session limit is reached and no idle session can be evicted
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


class SessionLimitError(SessionError):
    """``max_sessions`` sessions are open and every one has a request in flight."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"all {limit} sessions are busy (max_sessions={limit}); retry shortly "
                         "or raise BEAMISH_SESSIONS__MAX_SESSIONS")
        self.limit = limit


class RuntimeNotRunningError(SessionError):
    """The runtime that owns the sessions is not running."""
