"""The pydantic models the session layer returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from beamish.store import UsageTotals


class SessionInfo(BaseModel):
    """One open session: whose it is, since when, what it has used, what it has cached."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    user_id: str
    tier: str
    opened_at: datetime
    usage: UsageTotals
    cached_task_types: tuple[str, ...]


class JanitorReport(BaseModel):
    """What the janitor has done since it started."""

    model_config = ConfigDict(frozen=True)

    sweeps: int
    expired: int
    evicted: int
    last_sweep_expired: int
    open_sessions: int
    idle_sessions: int
