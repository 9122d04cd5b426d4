"""Fault injection: a PostgreSQL server of its own that tests stop and start, and helpers.

Every test here is marked ``faults`` (``pytest -m faults`` runs just them); they run in the
normal suite too, each bounded to well under 20 s of wall time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator

import pytest

from tests.store import _pg


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[_pg.Cluster]:
    """A private PostgreSQL cluster the module's tests may stop (skipped without one)."""
    bindir = _pg.find_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":  # CI never goes green by not testing PostgreSQL
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) not found; install postgresql")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    with _pg.stoppable_server(bindir) as cluster:
        yield cluster


class LogWatch(logging.Handler):
    """Records messages of a logger and lets a test wait (in a thread-safe way) for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self._seen = threading.Condition()
        self._waiters: list[tuple[str, asyncio.Event, asyncio.AbstractEventLoop]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.levelname} {record.getMessage()}"
        with self._seen:
            self.messages.append(message)
            for text, event, loop in self._waiters:
                if text in message:
                    loop.call_soon_threadsafe(event.set)

    async def wait_for(self, text: str) -> list[str]:
        """Return once a message holding ``text`` was logged: the messages holding it."""
        event = asyncio.Event()
        with self._seen:
            if not any(text in m for m in self.messages):
                self._waiters.append((text, event, asyncio.get_running_loop()))
            else:
                event.set()
        await event.wait()
        return self.matching(text)

    def matching(self, text: str) -> list[str]:
        """The messages holding ``text``."""
        with self._seen:
            return [m for m in self.messages if text in m]


@pytest.fixture
def store_log() -> Iterator[LogWatch]:
    """What ``beamish`` (and its children, ``beamish.store`` among them) logs in the test."""
    watch = LogWatch()
    loggers = [logging.getLogger("beamish")]
    for logger in loggers:
        logger.addHandler(watch)
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(watch)
            logger.setLevel(level)
