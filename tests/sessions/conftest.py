"""Fixtures: a running beamish Application on a fresh SQLite file, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beamish.application import Application
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings
from tests._clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


def make_settings(path: Path, **sessions: object) -> Settings:
    """Settings for a test runtime: a private SQLite file, no periodic sweeps."""
    options: dict[str, object] = {"ttl_s": 60.0, "sweep_interval_s": 3600.0, **sessions}
    return Settings(database_url=f"sqlite:///{path / 'beamish.db'}",
                    sessions=SessionSettings.model_validate(options))


@pytest.fixture
async def runtime(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Application]:
    """A started runtime; stopped (in order) after the test."""
    async with Application(make_settings(tmp_path), clock=clock) as rt:
        yield rt
