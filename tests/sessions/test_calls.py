"""Session-scoped calls: resolution -> provider -> usage recorded, whatever the outcome."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from beamish.application import Application
from beamish.llm.errors import FallbacksExhaustedError
from beamish.llm.providers.stream import StreamDone, TokenDelta
from beamish.runtime import ROOT, restart_child, terminate_child
from beamish.store import ProviderRecord, UsageBackpressureError, open_store
from tests._clock import FakeClock
from tests.sessions.conftest import make_settings

pytestmark = pytest.mark.anyio


async def test_complete_answers_and_records_usage(runtime: Application) -> None:
    """complete returns the answer with its config; the usage is durable on return."""
    await runtime.sessions.open("s1", "ada")
    result = await runtime.complete("s1", "hello there", request_id="q1")
    assert result.completion.offline
    assert "hello there" in result.completion.text
    assert (result.request_id, result.config.provider) == ("q1", "echo")
    usage = await runtime.store.session_totals("ada", "s1")
    assert (usage.requests, usage.prompt_tokens) == (1, result.completion.usage.prompt_tokens)


async def test_stream_yields_tokens_then_done_and_records_usage(runtime: Application) -> None:
    """A streamed answer ends with done; leaving the block records it as ok."""
    await runtime.sessions.open("s1", "ada")
    async with runtime.stream("s1", "one two three") as stream:
        events = [event async for event in stream]
    assert all(isinstance(e, TokenDelta) for e in events[:-1])
    assert isinstance(events[-1], StreamDone)
    assert stream.recorded is True
    totals = await runtime.store.usage_totals(user_id="ada")
    assert (totals.requests, totals.completion_tokens) == (1, events[-1].usage.completion_tokens)


async def test_an_abandoned_stream_records_its_partial_usage_as_cancelled(
        runtime: Application) -> None:
    """Leaving after the first token records what was seen, with status cancelled."""
    await runtime.sessions.open("s1", "ada")
    async with runtime.stream("s1", "one two three four five", request_id="q1") as stream:
        async for _ in stream:
            break
    by_status = await runtime.store.usage_by_provider_model(user_id="ada")
    assert stream.recorded is True
    assert by_status[0].requests == 1
    rows = await _ledger(runtime, "SELECT status, completion_tokens FROM usage_events")
    assert rows == [("cancelled", 1)]


async def test_a_failed_call_is_recorded_as_an_error(tmp_path: Path, clock: FakeClock) -> None:
    """When every model fails, complete raises and the ledger counts one error."""
    settings = make_settings(tmp_path)
    async with open_store(settings.database_url) as store:  # a server nobody listens on
        await store.register_provider(ProviderRecord(
            name="dead", kind="openai_compatible", base_url="http://127.0.0.1:9/v1"))
    async with Application(settings, clock=clock) as rt:
        await rt.users.set_default("ada", "openai_compatible", "m")
        await rt.sessions.open("s1", "ada")
        with pytest.raises(FallbacksExhaustedError):
            await rt.complete("s1", "hi", options={"max_retries": 0, "timeout_s": 1})
        totals = await rt.store.usage_totals(user_id="ada")
        assert (totals.requests, totals.errors) == (1, 1)


async def test_a_locked_database_buffers_usage_then_pushes_back(tmp_path: Path,
                                                                 clock: FakeClock) -> None:
    """While the database is locked, usage waits in the buffer; a full buffer refuses more."""
    settings = make_settings(tmp_path, usage_buffer=1)
    async with Application(settings, clock=clock) as rt:
        await rt.sessions.open("s1", "ada")
        lock = sqlite3.connect(tmp_path / "beamish.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: rt.sessions.record_usage("s1", provider="echo", model="e",
                                                           request_id="held"))
            await wait_all_tasks_blocked()  # the held event is queued, its writer is stuck
            assert rt.services.current_recorder().buffered == 1
            with pytest.raises(UsageBackpressureError, match="buffer is full"):
                await rt.sessions.record_usage("s1", provider="echo", model="e")
            lock.execute("ROLLBACK")  # the database is back: the held event gets written
        lock.close()
        assert (await rt.store.session_totals("ada", "s1")).requests == 1


async def test_stopping_the_runtime_writes_everything_queued(tmp_path: Path,
                                                             clock: FakeClock) -> None:
    """Usage recorded before the runtime stops is in the ledger after it stops."""
    settings = make_settings(tmp_path, usage_flush_interval_s=60.0, usage_max_batch=1000)
    async with Application(settings, clock=clock) as rt:
        await rt.sessions.open("s1", "ada")
        recorder = rt.services.current_recorder()
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(partial(rt.sessions.record_usage, "s1", provider="echo",
                                      model="e", request_id=f"r{n}"))
            await wait_all_tasks_blocked()
            assert recorder.buffered == 10
            tg.cancel_scope.cancel()  # the callers give up; the events are queued already
    async with open_store(settings.database_url) as store:
        assert (await store.session_totals("ada", "s1")).requests == 10


async def test_a_call_cancelled_while_the_recorder_restarts_is_recorded_when_it_is_back(
        runtime: Application) -> None:
    """Usage handed over, unawaited, while no recorder runs is parked and written by the
    next recorder: nothing a cancelled call used is dropped in the restart gap."""
    await runtime.sessions.open("s1", "ada")
    await terminate_child(ROOT, "usage_recorder")
    with anyio.CancelScope() as scope:
        async with runtime.stream("s1", "one two three", request_id="q1") as stream:
            async for _ in stream:
                scope.cancel()
                await anyio.lowlevel.checkpoint()
    assert stream.recorded is None  # cancelled: handed over without waiting
    assert await _ledger(runtime, "SELECT request_id FROM usage_events") == []
    await restart_child(ROOT, "usage_recorder")
    await runtime.sessions.record_usage("s1", provider="echo", model="e", request_id="q2")
    rows = await _ledger(runtime, "SELECT request_id, status, completion_tokens "
                                  "FROM usage_events ORDER BY request_id")
    assert rows == [("q1", "cancelled", 1), ("q2", "ok", 0)]
    assert (await runtime.sessions.usage("s1")).requests == 2


async def test_usage_parked_when_the_runtime_stops_is_reported_lost(
        tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Stopping with no recorder to take parked usage logs how many events were lost."""
    async with Application(make_settings(tmp_path), clock=clock) as rt:
        await rt.sessions.open("s1", "ada")
        await terminate_child(ROOT, "usage_recorder")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await rt.sessions.record_usage("s1", provider="echo", model="e")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "1 usage events were lost: the runtime stopped while the usage recorder was "
        "restarting"]


async def _ledger(runtime: Application, sql: str) -> list[tuple[object, ...]]:
    """Rows of the runtime's SQLite ledger, read with a separate connection."""
    path = runtime.settings.database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as conn:  # sqlite3's own with does not close
        return conn.execute(sql).fetchall()
