"""SIGTERM to a real ``beamish serve`` during a fault — a write-locked SQLite file, a provider
that never answers, a stopped PostgreSQL: the process exits by its shutdown deadline and says
how many usage events were lost, never silently and never after the fault has passed.

Each test bounds the wait for the exit well below the fault's own length (the lock is held,
the upstream hangs and PostgreSQL stays down until the process is gone), so a stop that waited
for the fault fails the test; no duration is asserted.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests._serve import SECRET, token
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer, Fault
from tests.store import _pg

pytestmark = [pytest.mark.faults, pytest.mark.timeout(60)]

SHUTDOWN_S = 3.0
EXIT_WAIT_S = SHUTDOWN_S + 15  # the deadline, closing the store, the process's own exit
CHAT = {"model": "beamish", "messages": [{"role": "user", "content": "hi"}]}
LOST = r"ERROR beamish \d+ usage events were lost|INFO beamish runtime stopped: 0 usage events lost"


def _env(database_url: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env.update(PYTHONUNBUFFERED="1", BEAMISH_SECRET_KEY=SECRET,
               BEAMISH_DATABASE_URL=database_url,
               BEAMISH_SERVER__SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_S),
               BEAMISH_SESSIONS__STORE_STALL_AFTER_S="0.3", **more)
    return env


@dataclass
class Served:
    """A ``beamish serve`` subprocess and what it has logged so far."""

    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    port: int = 0

    def read_until(self, pattern: str) -> re.Match[str]:
        """Read the log up to the first line matching ``pattern``."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"{pattern!r} never logged:\n{''.join(self.log)}")

    def chat_in_background(self) -> None:
        """Send one chat message to ``/v1`` from a thread (its answer is not waited for)."""
        threading.Thread(target=self.chat, daemon=True).start()

    def chat(self) -> httpx.Response:
        """One chat message to ``/v1``, as ada."""
        return httpx.post(f"http://127.0.0.1:{self.port}/v1/chat/completions", json=CHAT,
                          headers={"Authorization": f"Bearer {token('ada')}"}, timeout=30)

    def stop(self) -> str:
        """SIGTERM, wait (bounded) for the exit, and return the whole log."""
        assert self.process.stderr is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=EXIT_WAIT_S)  # raises if the stop waits for the fault
        return "".join(self.log) + self.process.stderr.read()


@contextmanager
def served(tmp_path: Path, env: dict[str, str]) -> Iterator[Served]:
    """``beamish serve`` on a free port with ``env``, killed if a test leaves it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    server = Served(process)
    try:
        server.port = int(server.read_until(r"listening on http://[\d.]+:(\d+)")[1])
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_sigterm_during_a_sqlite_lock_exits_by_the_deadline_reporting_lost_usage(
        tmp_path: Path) -> None:
    """With usage waiting on a locked SQLite file, SIGTERM exits by the shutdown deadline and
    logs the count of usage events lost (at ERROR), not silently."""
    db = tmp_path / "serve.db"
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        with served(tmp_path, _env(f"sqlite:///{db}")) as server:
            lock.execute("BEGIN IMMEDIATE")
            server.chat_in_background()
            server.read_until(r"store stalled")
            text = server.stop()
    finally:
        lock.close()
    assert re.search(r"ERROR beamish 1 usage events were lost", text), text


def test_sigterm_during_a_hanging_provider_call_exits_by_the_deadline(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """With a call waiting on an upstream that never answers, SIGTERM exits by the shutdown
    deadline, and the cancelled call's usage is either in the ledger or counted lost at
    ERROR (which one depends on whether its write beat the deadline): never silently gone."""
    env = _env(f"sqlite:///{tmp_path / 'serve.db'}",
               BEAMISH_LLM__DEFAULT_PROVIDER="openai_compatible",
               BEAMISH_LLM__DEFAULT_MODEL="model-a", BEAMISH_LLM__MAX_RETRIES="0",
               BEAMISH_LLM__TIMEOUT_S="120",
               BEAMISH_LLM__PROVIDERS__OPENAI_COMPATIBLE__BASE_URL=fake_llm.openai_url,
               BEAMISH_LLM__PROVIDERS__OPENAI_COMPATIBLE__API_KEY=OPENAI_KEY)
    fake_llm.script(Fault.hang())
    with served(tmp_path, env) as server:
        server.chat_in_background()
        assert fake_llm.wait_for_requests(1, timeout=15)
        text = server.stop()
    with contextlib.closing(sqlite3.connect(tmp_path / "serve.db")) as ledger:
        rows = ledger.execute("SELECT status FROM usage_events").fetchall()
    if re.search(r"ERROR beamish 1 usage events were lost", text) is None:
        assert "INFO beamish runtime stopped: 0 usage events lost" in text, text
        assert rows == [("cancelled",)]
    else:
        assert rows == []


def test_sigterm_during_a_postgresql_outage_exits_by_the_deadline(
        tmp_path: Path, pg_cluster: _pg.Cluster) -> None:
    """With PostgreSQL stopped under a call, SIGTERM exits by the shutdown deadline and says
    how many usage events were lost (none, or their count at ERROR), not silently."""
    with served(tmp_path, _env(pg_cluster.url)) as server:
        assert server.chat().status_code == 200
        pg_cluster.stop()  # and it stays down until the process is gone
        server.chat_in_background()
        server.read_until(r"store stalled")
        text = server.stop()
    assert re.search(LOST, text), text
