"""Every exception ``beamish.store`` raises.

No sqlite3 or asyncpg exception crosses the public API: the backends translate driver errors
into this tree (the driver error stays reachable as ``__cause__`` for debugging)::

    StoreError
    ├── UnsupportedURLError          the URL names no backend this package has
    ├── StoreUnavailableError        the database cannot be reached or stays locked; retry later
    ├── MigrationError
    │   ├── MigrationChecksumError   an applied migration file was edited after it ran
    │   └── UnknownMigrationError    the database ran migrations this code does not ship
    ├── ConflictError                a write broke a schema rule (unique, foreign key, check)
    │   ├── DuplicateConfigError     the user already has a config for that provider
    │   └── DuplicateProviderError   a provider with that name is already registered
    ├── NotFoundError
    │   ├── UserNotFoundError        no profile for that user id
    │   ├── ConfigNotFoundError      the user has no config for that provider
    │   └── ProviderNotFoundError    no registered provider with that name
    ├── UsageBackpressureError       the usage buffer is full because writes are failing
    ├── RecorderClosedError          the usage recorder is not running
    └── SecretKeyError               BEAMISH_SECRET_KEY is missing or cannot decrypt
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by ``beamish.store``."""


class UnsupportedURLError(StoreError, ValueError):
    """The store URL has a scheme no backend handles."""

    def __init__(self, url: str) -> None:
        scheme = url.split(":", 1)[0] if ":" in url else url
        super().__init__(
            f"unsupported store URL scheme {scheme!r}; use 'sqlite:///path/to.db' "
            "or 'postgresql://user@host/db'"
        )


class StoreUnavailableError(StoreError):
    """The database could not be reached, or stayed locked past the timeout."""


class MigrationError(StoreError):
    """The database schema cannot be brought up to date safely."""


class MigrationChecksumError(MigrationError):
    """A migration already applied to the database no longer matches its file."""

    def __init__(self, version: int, name: str, applied: str, shipped: str) -> None:
        self.version = version
        super().__init__(
            f"migration {version:04d} ({name}) was changed after it was applied: the database "
            f"recorded checksum {applied[:12]}…, the file now has {shipped[:12]}…; restore the "
            "original file and put the change in a new migration"
        )


class UnknownMigrationError(MigrationError):
    """The database has applied a migration version this code does not ship."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(
            f"the database has migration {version:04d} applied but this beamish does not ship "
            "it; run a beamish version at least as new as the one that migrated this database"
        )


class ConflictError(StoreError):
    """A write broke a schema rule.

    Attributes:
        kind: ``"unique"``, ``"foreign_key"``, ``"check"`` or ``"not_null"``.
    """

    def __init__(self, message: str, *, kind: str) -> None:
        self.kind = kind
        super().__init__(message)


class DuplicateConfigError(ConflictError):
    """The user already has a config for this provider."""

    def __init__(self, user_id: str, provider: str) -> None:
        self.user_id = user_id
        self.provider = provider
        super().__init__(
            f"user {user_id!r} already has a {provider!r} config; update it with "
            "update_config() or remove it first",
            kind="unique",
        )


class DuplicateProviderError(ConflictError):
    """A provider with this name is already registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"provider {name!r} is already registered; pick another name or update it",
            kind="unique",
        )


class NotFoundError(StoreError, LookupError):
    """The row the call needs does not exist."""


class UserNotFoundError(NotFoundError):
    """No profile exists for the user."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(f"user {user_id!r} has no profile; create it with upsert_profile()")


class ConfigNotFoundError(NotFoundError):
    """The user has no config for the provider."""

    def __init__(self, user_id: str, provider: str) -> None:
        self.user_id = user_id
        self.provider = provider
        super().__init__(
            f"user {user_id!r} has no {provider!r} config; add one with add_config()"
        )


class ProviderNotFoundError(NotFoundError):
    """No provider with this name is registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"provider {name!r} is not registered; add it with register_provider()")


class UsageBackpressureError(StoreError):
    """The recorder's buffer is full: the database is not keeping up or is down."""


class RecorderClosedError(StoreError):
    """The usage recorder is not running, so it cannot accept events."""


class SecretKeyError(StoreError):
    """The secret key is missing or invalid, or a ciphertext does not match it."""
