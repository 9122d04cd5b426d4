"""SIGTERM to a real ``beamish serve`` while the database is write-locked: it exits by the
deadline and logs how many usage events were lost."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests._serve import SECRET, token
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer, Fault
from tests.store import _pg

pytestmark = [pytest.mark.faults, pytest.mark.timeout(40)]

SHUTDOWN_S = 3.0


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env.update(PYTHONUNBUFFERED="1", BEAMISH_SECRET_KEY=SECRET,
               BEAMISH_DATABASE_URL=f"sqlite:///{db}",
               BEAMISH_SERVER__SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_S),
               BEAMISH_SESSIONS__STORE_STALL_AFTER_S="0.3")
    return env


def _read_until(stream: list[str], lines: object, pattern: str) -> re.Match[str]:
    for line in lines:  # type: ignore[attr-defined]
        stream.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"{pattern!r} never logged:\n{''.join(stream)}")


def test_sigterm_during_a_sqlite_lock_exits_by_the_deadline_reporting_lost_usage(
        tmp_path: Path) -> None:
    """With usage waiting on a locked SQLite file, SIGTERM exits within the shutdown deadline
    and logs the count of usage events lost (at ERROR), not silently."""
    db = tmp_path / "serve.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=tmp_path,
        env=_env(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log: list[str] = []
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        port = int(_read_until(log, process.stderr, r"listening on http://[\d.]+:(\d+)")[1])
        headers = {"Authorization": f"Bearer {token('ada')}"}
        body = {"model": "beamish", "messages": [{"role": "user", "content": "hi"}]}
        lock.execute("BEGIN IMMEDIATE")
        call = threading.Thread(target=lambda: httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers,
            timeout=30), daemon=True)
        call.start()
        _read_until(log, process.stderr, r"store stalled")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_S + 10)
        took = time.monotonic() - started
        rest = process.stderr.read()
    finally:
        lock.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    text = "".join(log) + rest
    assert took < SHUTDOWN_S + 5, text  # the deadline, plus closing the store and the process
    assert re.search(r"ERROR beamish 1 usage events were lost", text), text


def test_sigterm_during_a_hanging_provider_call_exits_by_the_deadline(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """With a call waiting on an upstream that never answers, SIGTERM exits within the
    shutdown deadline and logs the usage events lost by count (the cancelled call's)."""
    env = _env(tmp_path / "serve.db")
    env.update(BEAMISH_LLM__DEFAULT_PROVIDER="openai_compatible",
               BEAMISH_LLM__DEFAULT_MODEL="model-a", BEAMISH_LLM__MAX_RETRIES="0",
               BEAMISH_LLM__TIMEOUT_S="120",
               BEAMISH_LLM__PROVIDERS__OPENAI_COMPATIBLE__BASE_URL=fake_llm.openai_url,
               BEAMISH_LLM__PROVIDERS__OPENAI_COMPATIBLE__API_KEY=OPENAI_KEY)
    fake_llm.script(Fault.hang())
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log: list[str] = []
    try:
        port = int(_read_until(log, process.stderr, r"listening on http://[\d.]+:(\d+)")[1])
        headers = {"Authorization": f"Bearer {token('ada')}"}
        body = {"model": "beamish", "messages": [{"role": "user", "content": "hi"}]}
        call = threading.Thread(target=lambda: httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers,
            timeout=30), daemon=True)
        call.start()
        assert fake_llm.wait_for_requests(1, timeout=15)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_S + 10)
        took = time.monotonic() - started
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    text = "".join(log) + rest
    assert took < SHUTDOWN_S + 5, text  # the deadline, plus closing the store and the process
    assert re.search(r"ERROR beamish 1 usage events were lost", text), text


def test_sigterm_during_a_postgresql_outage_exits_by_the_deadline(
        tmp_path: Path, pg_cluster: _pg.Cluster) -> None:
    """With PostgreSQL stopped under a call, SIGTERM exits within the shutdown deadline and
    says how many usage events were lost (none, or their count at ERROR), not silently."""
    env = _env(tmp_path / "unused.db")
    env["BEAMISH_DATABASE_URL"] = pg_cluster.url
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log: list[str] = []
    try:
        port = int(_read_until(log, process.stderr, r"listening on http://[\d.]+:(\d+)")[1])
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"Authorization": f"Bearer {token('ada')}"}
        body = {"model": "beamish", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(url, json=body, headers=headers, timeout=30).status_code == 200
        pg_cluster.stop()  # the session is warm: the next answer waits only for its usage
        call = threading.Thread(target=lambda: httpx.post(
            url, json=body, headers=headers, timeout=30), daemon=True)
        call.start()
        _read_until(log, process.stderr, r"store stalled")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_S + 15)
        took = time.monotonic() - started
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    text = "".join(log) + rest
    assert took < SHUTDOWN_S + 12, text  # the deadline, plus closing the pool and the process
    # Said either way, never silently: the count lost at ERROR, or that none was.
    assert re.search(r"ERROR beamish \d+ usage events were lost|INFO beamish runtime stopped: "
                     r"0 usage events lost", text), text
