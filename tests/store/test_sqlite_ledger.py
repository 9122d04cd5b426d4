"""SQLite's ledger pipe: group commits formed in the writer's thread, never inside a
transaction, each request id credited once, nothing stranded at close — on aiosqlite's
thread (the verified aiosqlite releases) and on the pipe's own (the public-API fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from beamish import _versions
from beamish.store import StoreError, UsageEvent, UsageRecorder, _sqlite_ledger, open_store
from beamish.store._backend import UsageOutcome
from beamish.store._sqlite import SqliteBackend
from beamish.store._sqlite_ledger import (
    DRAIN_ROUNDS,
    ROUND_ROWS,
    VERIFIED_AIOSQLITE,
    LedgerPipe,
    _AiosqliteThread,
    _OwnThread,
    _Submission,
    usage_row,
)
from beamish.store._store import SqlStore
from tests.store.helpers import usage, usage_count

pytestmark = pytest.mark.anyio

UNKNOWN: tuple[_versions.Release, _versions.Release] = ((0, 0), (0, 0))
"""A verified range no aiosqlite is in: forces the pipe's own thread."""


@pytest.fixture(autouse=True, params=["aiosqlite thread", "own thread"])
def writer_thread(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on aiosqlite's thread and on the fallback's own thread."""
    if request.param == "own thread":
        monkeypatch.setattr(_sqlite_ledger, "VERIFIED_AIOSQLITE", UNKNOWN)
    return str(request.param)


def _backend(store: SqlStore) -> SqliteBackend:
    backend = store._backend
    assert isinstance(backend, SqliteBackend)
    return backend


def _rename(path: Path, table: str, to: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute(f"ALTER TABLE {table} RENAME TO {to}")


def _pipe(store: SqlStore) -> LedgerPipe:
    pipe = _backend(store)._ledger
    assert pipe is not None
    return pipe


def _hand_over(store: SqlStore, events: list[UsageEvent],
               then: Callable[[UsageOutcome], None]) -> bool:
    """``store.record_many``: the events handed over at once (a future), whose outcome —
    the request ids counted, or the StoreError — is told to ``then``."""
    written = store.record_many(events)
    assert isinstance(written, asyncio.Future)

    def tell(done: asyncio.Future[frozenset[str]]) -> None:
        error = done.exception()
        then(error if isinstance(error, StoreError) else done.result())

    written.add_done_callback(tell)
    return True


class Outcomes:
    """Collects what submissions are told, and lets a test wait for all of them."""

    def __init__(self, expected: int) -> None:
        self.told: dict[str, UsageOutcome] = {}
        self._expected = expected
        self._all = asyncio.Event()

    def then(self, name: str) -> Callable[[UsageOutcome], None]:
        def tell(outcome: UsageOutcome) -> None:
            self.told[name] = outcome
            if len(self.told) == self._expected:
                self._all.set()
        return tell

    async def wait(self) -> dict[str, UsageOutcome]:
        await self._all.wait()
        return self.told


async def test_what_queues_during_a_transaction_is_one_commit_after_it(
        sqlite_store: SqlStore) -> None:
    """Submissions made while a transaction is open wait for its end, then share one commit
    (none joins the transaction: it rolls back here, and they are written all the same)."""
    pipe, outcomes = _pipe(sqlite_store), Outcomes(20)
    commits = pipe.commits

    async def submit_in_a_transaction_that_rolls_back() -> None:
        async with _backend(sqlite_store).transaction():
            for i in range(20):
                assert _hand_over(sqlite_store, [usage(f"r{i}")], outcomes.then(f"r{i}"))
            assert not pipe._scheduled  # no drain may run while the transaction is open
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        await submit_in_a_transaction_that_rolls_back()
    told = await outcomes.wait()
    assert told == {f"r{i}": frozenset({f"r{i}"}) for i in range(20)}
    assert pipe.commits == commits + 1
    assert await usage_count(sqlite_store) == 20


async def test_a_backlog_is_split_over_commits(sqlite_store: SqlStore) -> None:
    """A commit takes ROUND_ROWS rows at most (whole submissions, one at least), so the loop
    can tell one commit's callers while the next is written."""
    pipe, outcomes = _pipe(sqlite_store), Outcomes(3)
    half = ROUND_ROWS // 2 + 1
    commits = pipe.commits
    async with _backend(sqlite_store).transaction():  # hold them for one drain
        for name, size in (("a", half), ("b", half), ("c", ROUND_ROWS + 1)):
            _hand_over(sqlite_store, [usage(f"{name}{i}") for i in range(size)],
                                          outcomes.then(name))
    told = await outcomes.wait()
    assert told == {name: frozenset(f"{name}{i}" for i in range(size))
                    for name, size in (("a", half), ("b", half), ("c", ROUND_ROWS + 1))}
    assert pipe.commits - commits == 3  # a and b do not fit in one; c is one on its own
    assert await usage_count(sqlite_store) == 2 * half + ROUND_ROWS + 1


async def test_a_request_id_is_credited_to_its_first_submission_only(
        sqlite_store: SqlStore) -> None:
    """One id in two submissions of one commit, and a known one: counted once, for the
    first; the known id for neither."""
    await sqlite_store.record(usage("known"))
    outcomes = Outcomes(3)
    async with _backend(sqlite_store).transaction():  # hold them for one drain
        _hand_over(sqlite_store, [usage("a"), usage("b")], outcomes.then("first"))
        _hand_over(sqlite_store, [usage("b"), usage("known")], outcomes.then("second"))
        _hand_over(sqlite_store, [usage("c")], outcomes.then("third"))
    told = await outcomes.wait()
    assert told == {"first": {"a", "b"}, "second": frozenset(), "third": {"c"}}
    assert await usage_count(sqlite_store) == 4


async def test_an_id_repeated_in_one_hand_over_is_written_as_its_first_event(
        sqlite_store: SqlStore) -> None:
    outcomes = Outcomes(1)
    assert _hand_over(sqlite_store,
        [usage("r1", prompt_tokens=1), usage("r2", prompt_tokens=2),
         usage("r1", prompt_tokens=100)], outcomes.then("both"))
    assert await outcomes.wait() == {"both": frozenset({"r1", "r2"})}
    totals = await sqlite_store.usage_totals()
    assert (totals.requests, totals.prompt_tokens) == (2, 3)


async def test_a_long_backlog_leaves_the_thread_between_drains(sqlite_store: SqlStore) -> None:
    """A drain commits at most DRAIN_ROUNDS times, each taking what queued meanwhile; what
    is left then gets a drain of its own, behind the connection's other requests."""
    pipe = _pipe(sqlite_store)
    total = DRAIN_ROUNDS * 2 + 1
    outcomes = Outcomes(total)
    drains: list[int] = []
    made = 1
    drain, insert = pipe._drain, pipe._insert

    def counted_drain() -> None:
        drains.append(1)
        drain()

    def insert_and_queue_one_more(taken: list[_Submission]) -> frozenset[str] | StoreError | None:
        nonlocal made
        if made < total:  # as if a caller submitted while this round commits
            name = f"r{made}"
            pipe._queued.append(_Submission([usage_row(usage(name))], frozenset({name}),
                                            outcomes.then(name)))
            made += 1
        return insert(taken)

    pipe._drain = counted_drain  # type: ignore[method-assign]
    pipe._insert = insert_and_queue_one_more  # type: ignore[method-assign]
    commits = pipe.commits
    _hand_over(sqlite_store, [usage("r0")], outcomes.then("r0"))
    told = await outcomes.wait()
    assert told == {f"r{i}": frozenset({f"r{i}"}) for i in range(total)}
    assert (pipe.commits - commits, len(drains)) == (total, 3)
    assert await usage_count(sqlite_store) == total


async def test_a_failed_commit_tells_its_submissions_and_the_pipe_goes_on(
        sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A statement that fails hands each submission a StoreError; later ones are written."""
    outcomes = Outcomes(2)
    _rename(tmp_path / "sqlite-only.db", "usage_events", "usage_events_away")
    _hand_over(sqlite_store, [usage("r1")], outcomes.then("r1"))
    _hand_over(sqlite_store, [usage("r2")], outcomes.then("r2"))
    told = await outcomes.wait()
    assert all(isinstance(outcome, StoreError) and "no such table" in str(outcome)
               for outcome in told.values())
    _rename(tmp_path / "sqlite-only.db", "usage_events_away", "usage_events")
    assert await sqlite_store.record_many([usage("r3")]) == {"r3"}


async def test_a_callback_that_fails_does_not_strand_the_others(
        sqlite_store: SqlStore) -> None:
    """One submission's callback raising is reported to the loop; the rest are told."""
    reported: list[BaseException] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    try:
        outcomes = Outcomes(1)

        def broken(outcome: UsageOutcome) -> None:
            raise ValueError("a caller's bug")

        async with _backend(sqlite_store).transaction():
            _pipe(sqlite_store).submit([usage("r1")], broken)
            _pipe(sqlite_store).submit([usage("r2")], outcomes.then("r2"))
        assert await outcomes.wait() == {"r2": frozenset({"r2"})}
        assert [str(error) for error in reported] == ["a caller's bug"]
    finally:
        loop.set_exception_handler(None)


async def test_closing_fails_what_waits_and_refuses_more(tmp_path: Path) -> None:
    """Submissions still waiting (behind a transaction) when the store closes are told so;
    a submission after the close raises StoreError."""
    outcomes = Outcomes(1)
    async with open_store(f"sqlite:///{tmp_path / 'closing.db'}") as store:
        assert isinstance(store, SqlStore)
        pipe, backend = _pipe(store), _backend(store)
        async with backend._lock:  # a transaction's hold, whose end never resumes the pipe
            _hand_over(store, [usage("r1")], outcomes.then("r1"))
    told = await outcomes.wait()
    assert isinstance(told["r1"], StoreError)
    assert "not recorded" in str(told["r1"])
    with pytest.raises(StoreError, match="closed"):
        pipe.submit([usage("r2")], outcomes.then("r2"))
    with pytest.raises(StoreError, match="not open"):
        store.record_many([usage("r2")])


def test_the_installed_aiosqlite_is_one_the_ledger_was_verified_with() -> None:
    """Fails after an upgrade past VERIFIED_AIOSQLITE: re-read aiosqlite's worker loop (its
    _tx queue of (future, job) pairs and _conn), then widen the range and pyproject.toml."""
    installed = _versions.installed("aiosqlite")
    assert _versions.verified(installed, *VERIFIED_AIOSQLITE), (
        f"aiosqlite {installed} is outside the verified range {VERIFIED_AIOSQLITE}")


async def test_the_pipe_runs_on_the_thread_its_aiosqlite_allows(
        writer_thread: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified aiosqlite: its own thread, silently; another: the pipe's, warned of once."""
    monkeypatch.setattr(_versions, "_warned", set())
    expected = _AiosqliteThread if writer_thread == "aiosqlite thread" else _OwnThread
    with caplog.at_level(logging.WARNING, logger="beamish.store"):
        for name in ("one.db", "two.db"):
            async with open_store(f"sqlite:///{tmp_path / name}") as store:
                assert isinstance(store, SqlStore)
                assert type(_pipe(store)._thread) is expected
    warnings = [r.getMessage() for r in caplog.records if "verified" in r.getMessage()]
    assert len(warnings) == (0 if expected is _AiosqliteThread else 1)


async def test_concurrent_records_through_the_recorder_are_counted_exactly(
        sqlite_store: SqlStore) -> None:
    """Many callers, repeated ids: each id counted once, for one caller, in group commits."""
    pipe, commits = _pipe(sqlite_store), _pipe(sqlite_store).commits
    results: dict[str, list[bool]] = {f"r{i}": [] for i in range(50)}

    async def record(request_id: str) -> None:
        results[request_id].append(await recorder.record(usage(request_id)))

    async with UsageRecorder(sqlite_store) as recorder, anyio.create_task_group() as tg:
        for _ in range(3):
            for request_id in results:
                tg.start_soon(record, request_id)
    assert all(sorted(told) == [False, False, True] for told in results.values())
    assert await usage_count(sqlite_store) == 50
    assert 1 <= pipe.commits - commits < 150  # grouped: fewer commits than records
