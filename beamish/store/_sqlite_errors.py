"""sqlite3's errors as the store's (``translate``): never a raw driver error through the API."""

from __future__ import annotations

import sqlite3

from beamish.store.errors import ConflictError, StoreError, StoreUnavailableError

_CONFLICT_KINDS = {
    "UNIQUE": "unique",
    "FOREIGN KEY": "foreign_key",
    "CHECK": "check",
    "NOT NULL": "not_null",
}
_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "full")


def translate(error: sqlite3.Error) -> StoreError:
    """The beamish error for a sqlite3 error (the caller raises it ``from`` the original)."""
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError):
        for prefix, kind in _CONFLICT_KINDS.items():
            if message.startswith(prefix):
                return ConflictError(f"{kind} constraint violated: {message}", kind=kind)
        return ConflictError(message, kind="unknown")
    if isinstance(error, sqlite3.OperationalError) and any(
        word in message.lower() for word in _UNAVAILABLE
    ):
        return StoreUnavailableError(f"SQLite database unavailable: {message}")
    return StoreError(f"SQLite error: {message}")
