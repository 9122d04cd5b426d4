"""Session settings: ``[sessions]`` in ``beamish.toml`` or ``BEAMISH_SESSIONS__*`` variables.

Options (defaults in brackets):

* ``ttl_s`` [1800] — a session idle this long is expired by the janitor.
* ``max_sessions`` [100_000] — open sessions at most; opening one more evicts the least
  recently active idle session (never one with a request in flight or a joined socket),
  of a user at their cap first.
* ``max_sessions_per_user`` [100] — open sessions of one user at most; that user opening one
  more evicts their own least recently active idle session (or fails with
  ``SessionLimitError`` when all of theirs are busy), never another user's.
* ``sweep_interval_s`` [1.0] — how often the janitor looks for expired sessions.
* ``max_expire_per_sweep`` [None: all] — spread a large expiry over several sweeps.
* ``hibernate_after_s`` [5.0] — an idle session context drops its task and mailbox.
* ``usage_max_batch`` [1000], ``usage_flush_interval_s`` [0.005] — group commits of usage.
* ``usage_buffer`` [100_000] — usage events held while the database is unreachable; beyond
  it ``record_usage`` fails with ``UsageBackpressureError`` instead of losing anything.
* ``usage_retry_first_s`` [0.05], ``usage_retry_max_s`` [5.0] — backoff while it is down.
* ``store_stall_after_s`` [2.0] — usage waiting this long with no write completing is a store
  stall: logged once when it starts and once when it ends, and ``/ready`` answers 503.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SessionSettings(BaseModel):
    """How sessions live, expire and record usage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl_s: float = Field(default=1800.0, gt=0)
    max_sessions: int = Field(default=100_000, ge=1)
    max_sessions_per_user: int = Field(default=100, ge=1)
    sweep_interval_s: float = Field(default=1.0, gt=0)
    max_expire_per_sweep: int | None = Field(default=None, ge=1)
    hibernate_after_s: float | None = Field(default=5.0, gt=0)
    usage_max_batch: int = Field(default=1000, ge=1)
    usage_flush_interval_s: float = Field(default=0.005, ge=0)
    usage_buffer: int = Field(default=100_000, ge=1)
    usage_retry_first_s: float = Field(default=0.05, ge=0)
    usage_retry_max_s: float = Field(default=5.0, ge=0)
    store_stall_after_s: float = Field(default=2.0, gt=0)
