"""UsageRecorder: group commits, durable acknowledgements, backpressure, retries, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from beamish.store import (
    RecorderClosedError,
    RetryPolicy,
    Store,
    StoreError,
    StoreUnavailableError,
    UsageBackpressureError,
    UsageEvent,
    UsageRecorder,
)
from beamish.store._store import SqlStore
from tests.store.helpers import configured_user, usage, usage_count

pytestmark = pytest.mark.anyio

NEVER = 3600.0  # a flush interval no test waits for: reaching it would hit the test timeout
NO_WAIT = RetryPolicy(attempts=3, first_delay=0, max_delay=0)
OUTAGE = StoreUnavailableError("database is down (simulated outage)")


class OutageStore:
    """A real store behind an outage: the first writes fail, later ones wait for recovery."""

    def __init__(self, store: Store, failing_writes: int | None = 1) -> None:
        self.store = store
        self.failing_writes = failing_writes  # None: the outage never ends
        self.failures = 0
        self.failed = anyio.Event()
        self.back_up = anyio.Event()

    async def record_many(self, events: Iterable[UsageEvent], *,
                          on_durable: Callable[[], object] | None = None) -> frozenset[str]:
        if self.failing_writes is None or self.failures < self.failing_writes:
            self.failures += 1
            self.failed.set()
            raise StoreUnavailableError("database is down (simulated outage)")
        await self.back_up.wait()
        return await self.store.record_many(events, on_durable=on_durable)


class DelegatingStore:
    """A real store's writes, behind a fake that says whether it ``groups_commits``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        return self.store.record_many(events, on_durable=on_durable)

    @property
    def groups_commits(self) -> bool:
        return self.store.groups_commits


class HandOverStore(DelegatingStore):
    """A real store that groups commits (SQLite's), whose first ``failing`` hand-overs are
    held until the test calls ``answer_held``, which answers them "unavailable"."""

    def __init__(self, store: Store, failing: int = 1) -> None:
        super().__init__(store)
        self.failing = failing
        self.handed = 0
        self.held: list[asyncio.Future[frozenset[str]]] = []

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        self.handed += 1
        if self.handed > self.failing:
            return self.store.record_many(events, on_durable=on_durable)
        held: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        self.held.append(held)
        return held

    def answer_held(self) -> None:
        for held in self.held:
            held.set_exception(OUTAGE)


class CannotGroupStore(DelegatingStore):
    """A real store behind a backend without a pipeline (as PostgreSQL's); counts how often
    it is asked whether it groups commits."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.asked = 0

    @property
    def groups_commits(self) -> bool:
        self.asked += 1
        return False


class ClosedGroupingStore(DelegatingStore):
    """A store that groups commits, and is closed: it takes nothing (counted in ``asked``)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.asked = 0

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        self.asked += 1
        raise StoreError("the store is not open")

    @property
    def groups_commits(self) -> bool:
        return True


async def test_a_grouping_store_is_handed_events_without_lingering(sqlite_store: SqlStore) -> None:
    """SQLite groups commits in its writer thread: an event is handed over as the loop's turn
    ends, without lingering for company (the interval here is never reached)."""
    pipe = sqlite_store._backend._ledger  # type: ignore[attr-defined]
    commits = pipe.commits
    async with UsageRecorder(sqlite_store, flush_interval=NEVER) as recorder:
        assert await recorder.record(usage("r1")) is True
        assert (recorder.batches_written, pipe.commits - commits) == (1, 1)
        assert await recorder.record(usage("r1")) is False
    assert await usage_count(sqlite_store) == 1


async def test_a_turns_events_go_to_a_grouping_store_in_batches(sqlite_store: SqlStore) -> None:
    """The events of one turn are handed over together, in batches of max_batch /
    max_in_flight at most (so a backlog is committed in parts)."""
    store = HandOverStore(sqlite_store, failing=0)
    async with UsageRecorder(store, max_batch=4, max_in_flight=2,
                             flush_interval=NEVER) as recorder:
        futures = [recorder.submit(usage(f"r{i}")) for i in range(5)]
        assert store.handed == 2  # two full batches of two; the fifth waits for the turn's end
        assert [await future for future in futures] == [True] * 5
        assert store.handed == 3
    assert await usage_count(sqlite_store) == 5


async def test_a_handed_over_event_in_an_outage_is_retried_from_the_queue(
        sqlite_store: SqlStore) -> None:
    """An event the grouping store answers "unavailable" joins the queue and is retried
    with backoff; events after it follow it there, and all are written once."""
    store = HandOverStore(sqlite_store)
    async with UsageRecorder(store, flush_interval=0, retry=NO_WAIT) as recorder:
        first = recorder.submit(usage("r1"))
        await wait_all_tasks_blocked()  # the turn has ended: the event is handed over
        assert store.handed == 1
        store.answer_held()
        second = recorder.submit(usage("r2"))  # r1 is queued: r2 does not overtake it
        assert (store.handed, recorder.buffered) == (1, 2)
        assert (await first, await second) == (True, True)
    assert await usage_count(sqlite_store) == 2


async def test_closing_waits_for_handed_over_events(sqlite_store: SqlStore) -> None:
    """Leaving the context while an event is with the store: if it comes back unwritten,
    the closing recorder still writes it."""
    store = HandOverStore(sqlite_store)
    recorder = UsageRecorder(store, flush_interval=0, retry=NO_WAIT)

    async def answer_while_closing() -> None:
        await wait_all_tasks_blocked()  # the recorder is waiting for the store's answer
        store.answer_held()

    async with anyio.create_task_group() as tg, recorder:
        future = recorder.submit(usage("r1"))
        tg.start_soon(answer_while_closing)
    assert future.result() is True
    assert await usage_count(sqlite_store) == 1


async def test_a_store_that_cannot_group_gets_batches(store: Store) -> None:
    """A store whose backend has no pipeline is asked once whether it groups commits, then
    handed batches."""
    await configured_user(store)
    cannot = CannotGroupStore(store)
    async with UsageRecorder(cannot, flush_interval=0) as recorder:
        assert await recorder.record(usage("r1")) is True
        await wait_all_tasks_blocked()  # its write has ended: nothing is in flight
        assert await recorder.record(usage("r2")) is True
    assert cannot.asked == 1
    assert await usage_count(store) == 2


async def test_a_stopped_recorder_fails_what_the_store_would_not_take(store: Store) -> None:
    """Events gathered for the store in the turn the recorder stopped, which the store will
    not take, fail their callers at once: no writer is left to write them from the queue."""
    cannot = ClosedGroupingStore(store)
    recorder = UsageRecorder(cannot, flush_interval=0)
    await recorder.__aenter__()
    assert recorder._task is not None
    recorder._task.cancel()  # stops at its next step, before this turn's events go over
    future = recorder.submit(usage("r1"))
    with pytest.raises(RecorderClosedError, match="not recorded"):
        await future
    assert cannot.asked == 1
    with pytest.raises(asyncio.CancelledError):
        await recorder.__aexit__(None, None, None)


async def test_record_returns_once_durable(store: Store) -> None:
    """After record() returns, the event is in the ledger and counted."""
    await configured_user(store)
    async with UsageRecorder(store, flush_interval=0) as recorder:
        assert await recorder.record(usage("r1")) is True
        assert await usage_count(store) == 1


async def test_full_batch_flushes_without_waiting_for_the_interval(store: Store) -> None:
    """max_batch queued events are written at once, in one batch when one write may be open."""
    await configured_user(store)
    async with UsageRecorder(store, max_batch=20, flush_interval=NEVER,
                             max_in_flight=1, hand_over=False) as recorder:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(recorder.record, usage(f"r{i}"))
        assert (recorder.batches_written, recorder.events_written) == (1, 20)
    assert await usage_count(store) == 20


class GatedStore:
    """A real store whose writes wait for ``open_gate``; it notes the batches it is handed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.handed: list[int] = []
        self.open_gate = anyio.Event()

    async def record_many(self, events: Iterable[UsageEvent], *,
                          on_durable: Callable[[], object] | None = None) -> frozenset[str]:
        batch = list(events)
        self.handed.append(len(batch))
        await self.open_gate.wait()
        return await self.store.record_many(batch, on_durable=on_durable)


class EarlyStore:
    """A store that says its batches are durable (``on_durable``) before its writes return,
    which wait for ``open_gate``."""

    def __init__(self) -> None:
        self.open_gate = anyio.Event()

    async def record_many(self, events: Iterable[UsageEvent], *,
                          on_durable: Callable[[], object] | None = None) -> frozenset[str]:
        ids = frozenset(e.request_id for e in events)
        assert on_durable is not None
        on_durable()
        await self.open_gate.wait()
        return ids


async def test_callers_learn_of_durability_as_soon_as_the_store_says_so() -> None:
    """on_durable answers the batch's callers (and counts the batch written) while its write
    has not returned yet; a request id repeated in the batch still counts once. The write's
    return changes nothing."""
    early = EarlyStore()
    async with UsageRecorder(early, flush_interval=NEVER, max_batch=3,
                             max_in_flight=1) as recorder:
        try:
            futures = [recorder.submit(usage(rid)) for rid in ("a", "b", "a")]
            with anyio.fail_after(5):
                assert [await f for f in futures] == [True, True, False]
            # Counted as written, though the write has not returned yet.
            assert (recorder.batches_written, recorder.buffered) == (1, 3)
        finally:
            early.open_gate.set()
        await recorder.wait_flushed()
        assert (recorder.batches_written, recorder.events_written) == (1, 3)


async def test_queued_events_are_spread_over_the_free_write_slots(store: Store) -> None:
    """Two write slots: a full queue goes to the store as two batches, both at once."""
    await configured_user(store)
    gated = GatedStore(store)
    async with UsageRecorder(gated, max_batch=20, flush_interval=NEVER) as recorder:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(recorder.record, usage(f"r{i}"))
            await wait_all_tasks_blocked()
            assert gated.handed == [10, 10]  # the second did not wait for the first
            gated.open_gate.set()
        assert (recorder.batches_written, recorder.events_written) == (2, 20)
    assert await usage_count(store) == 20


async def test_events_wait_for_a_free_write_slot(store: Store) -> None:
    """With every slot writing, new events queue; they go out together once a slot frees."""
    await configured_user(store)
    gated = GatedStore(store)
    async with UsageRecorder(gated, max_batch=100, flush_interval=0,
                             max_in_flight=2) as recorder, anyio.create_task_group() as tg:
        for i in range(2):
            tg.start_soon(recorder.record, usage(f"first{i}"))
        await wait_all_tasks_blocked()
        assert gated.handed == [1, 1]
        for i in range(30):
            tg.start_soon(recorder.record, usage(f"next{i}"))
        await wait_all_tasks_blocked()
        assert (gated.handed, recorder.buffered) == ([1, 1], 32)
        gated.open_gate.set()
    assert gated.handed[:2] == [1, 1]
    assert sum(gated.handed) == 32
    assert len(gated.handed) <= 4  # the 30 went out in at most the two freed slots
    assert await usage_count(store) == 32


def test_write_slots_are_checked() -> None:
    """max_in_flight must be at least 1."""
    with pytest.raises(ValueError, match="max_in_flight"):
        UsageRecorder(OutageStore.__new__(OutageStore), max_in_flight=0)


async def test_interval_flushes_a_partial_batch(store: Store) -> None:
    """A lone event is written after the flush interval, without filling a batch."""
    await configured_user(store)
    async with UsageRecorder(store, max_batch=1000, flush_interval=0.001,
                             hand_over=False) as recorder:
        assert await recorder.record(usage("r1")) is True
        assert recorder.batches_written == 1


async def test_an_event_right_after_a_write_does_not_linger(store: Store) -> None:
    """Writes following one another (the last ended less than an interval ago) do not wait
    for company: only an event coming from idle does."""
    await configured_user(store)
    async with UsageRecorder(store, max_batch=2, flush_interval=NEVER,
                             max_in_flight=1, hand_over=False) as recorder:
        async with anyio.create_task_group() as tg:  # a full batch: written at once
            for i in range(2):
                tg.start_soon(recorder.record, usage(f"burst{i}"))
        assert await recorder.record(usage("next")) is True  # lingering: the test times out
        assert (recorder.batches_written, recorder.events_written) == (2, 3)


async def test_shutdown_flushes_what_is_queued(store: Store) -> None:
    """Leaving the context writes queued events and acknowledges them."""
    await configured_user(store)
    results: list[bool] = []

    async def record(event: UsageEvent) -> None:
        results.append(await recorder.record(event))

    recorder = UsageRecorder(store, max_batch=1000, flush_interval=NEVER)
    async with anyio.create_task_group() as tg, recorder:
        for i in range(5):
            tg.start_soon(record, usage(f"r{i}"))
        await wait_all_tasks_blocked()
        assert recorder.buffered == 5
    assert results == [True] * 5
    assert await usage_count(store) == 5


async def test_duplicates_in_one_batch_count_once(store: Store) -> None:
    """Concurrent records of one id through the recorder: one True, counter 1."""
    await configured_user(store)
    results: list[bool] = []

    async def record() -> None:
        results.append(await recorder.record(usage("same")))

    recorder = UsageRecorder(store, max_batch=10, flush_interval=NEVER)
    async with recorder, anyio.create_task_group() as tg:
        for _ in range(10):
                tg.start_soon(record)
    assert sorted(results) == [False] * 9 + [True]
    assert await usage_count(store) == 1


async def test_outage_is_retried_then_written(store: Store) -> None:
    """A batch that fails while the database is down is retried and written once."""
    await configured_user(store)
    outage = OutageStore(store)
    recorder = UsageRecorder(outage, flush_interval=0, retry=NO_WAIT)
    async with recorder, anyio.create_task_group() as tg:
        tg.start_soon(recorder.record, usage("r1"))
        await outage.failed.wait()
        outage.back_up.set()
    assert outage.failures == 1
    assert await usage_count(store) == 1


async def test_full_buffer_during_outage_is_backpressure(store: Store) -> None:
    """With the database down and the buffer full, record() fails fast, naming the cause."""
    await configured_user(store)
    outage = OutageStore(store)
    recorder = UsageRecorder(outage, max_batch=3, max_buffer=3, flush_interval=0,
                             retry=RetryPolicy(attempts=100, first_delay=0))
    async with anyio.create_task_group() as tg, recorder:
        for i in range(3):
            tg.start_soon(recorder.record, usage(f"r{i}"))
        await outage.failed.wait()
        await wait_all_tasks_blocked()
        assert recorder.buffered == 3
        with pytest.raises(UsageBackpressureError, match=r"buffer is full.*simulated outage"):
            await recorder.record(usage("r3"))
        outage.back_up.set()
    assert await usage_count(store) == 3


async def test_exhausted_retries_fail_the_waiting_callers(store: Store) -> None:
    """After the last attempt, every caller of the batch gets the error: not durable."""
    outage = OutageStore(store, failing_writes=None)
    async with UsageRecorder(outage, flush_interval=0, retry=NO_WAIT) as recorder:
        with pytest.raises(StoreUnavailableError, match="simulated outage"):
            await recorder.record(usage("r1"))
    assert outage.failures == NO_WAIT.attempts
    assert (await store.usage_totals()).requests == 0


async def test_unlimited_retries_outlast_a_long_outage(store: Store) -> None:
    """With attempts=None, a batch survives any number of failures while the recorder runs."""
    await configured_user(store)
    outage = OutageStore(store, failing_writes=50)
    outage.back_up.set()  # the 51st attempt finds the database back
    recorder = UsageRecorder(outage, flush_interval=0,
                             retry=RetryPolicy(attempts=None, first_delay=0, max_delay=0))
    async with recorder:
        assert await recorder.record(usage("r1")) is True
    assert outage.failures == 50
    assert await usage_count(store) == 1


async def test_unlimited_retries_end_when_closing(store: Store) -> None:
    """Closing during an endless outage fails the waiting caller after the closing limit."""
    outage = OutageStore(store, failing_writes=None)
    policy = RetryPolicy(attempts=None, first_delay=0, max_delay=0, attempts_when_closing=4)
    errors: list[StoreUnavailableError] = []

    async def record() -> None:
        try:
            await recorder.record(usage("r1"))
        except StoreUnavailableError as error:
            errors.append(error)

    recorder = UsageRecorder(outage, flush_interval=0, retry=policy)
    async with anyio.create_task_group() as tg, recorder:
        tg.start_soon(record)
        await outage.failed.wait()
    assert len(errors) == 1
    assert outage.failures >= policy.attempts_when_closing
    assert (await store.usage_totals()).requests == 0


def test_closing_limit_applies_only_to_unlimited_policies() -> None:
    """A finite policy keeps its own limit when closing; an unlimited one takes the closing one."""
    assert RetryPolicy(attempts=5).gives_up(4, closing=True) is False
    assert RetryPolicy(attempts=5).gives_up(5, closing=False) is True
    assert RetryPolicy(attempts=None).gives_up(10_000, closing=False) is False
    assert RetryPolicy(attempts=None, attempts_when_closing=2).gives_up(2, closing=True) is True


async def test_submitted_events_are_written_without_anyone_waiting(store: Store) -> None:
    """submit() queues at once; the event is written even if nobody awaits its future."""
    await configured_user(store)
    async with UsageRecorder(store, flush_interval=0) as recorder:
        recorder.submit(usage("r1"))
        recorder.submit(usage("r2"))
        assert recorder.buffered == 2  # queued synchronously: nothing has run yet
        await recorder.wait_flushed()
        assert recorder.buffered == 0
        assert await usage_count(store) == 2


async def test_record_outside_the_context_is_refused(store: Store) -> None:
    """Before entering and after leaving, record() raises RecorderClosedError."""
    recorder = UsageRecorder(store)
    with pytest.raises(RecorderClosedError, match="not running"):
        await recorder.record(usage("r1"))
    async with recorder:
        pass
    with pytest.raises(RecorderClosedError):
        await recorder.record(usage("r1"))


def test_retry_delays_double_up_to_the_cap() -> None:
    """Backoff is exponential and capped."""
    policy = RetryPolicy(first_delay=0.1, max_delay=0.5)
    assert [policy.delay(n) for n in range(1, 5)] == [0.1, 0.2, 0.4, 0.5]


def test_batch_bounds_are_checked() -> None:
    """max_batch must be between 1 and max_buffer."""
    with pytest.raises(ValueError, match="max_batch"):
        UsageRecorder(OutageStore.__new__(OutageStore), max_batch=10, max_buffer=5)


async def test_cancelled_recorder_fails_the_batch_in_flight(store: Store) -> None:
    """Cancelling the recorder's owner mid-write tells the waiting caller: not acknowledged."""
    outage = OutageStore(store, failing_writes=0)  # every write hangs until back_up
    errors: list[RecorderClosedError] = []
    recorder = UsageRecorder(outage, flush_interval=0)

    async def record() -> None:
        try:
            await recorder.record(usage("r1"))
        except RecorderClosedError as error:
            errors.append(error)

    async with anyio.create_task_group() as callers:
        with anyio.CancelScope() as owner:
            async with recorder:
                callers.start_soon(record)
                await wait_all_tasks_blocked()
                assert recorder.buffered == 1
                owner.cancel()
                await anyio.sleep_forever()
    assert len(errors) == 1
    assert "retry it with the same request_id" in str(errors[0])
