"""``UsageRecorder``: write-behind usage recording with group commit.

Recording each LLM request in its own transaction costs one commit (one fsync) per request.
The recorder queues events and writes them in batches with ``Store.record_many``, so many
requests share a commit, while each caller still learns when *its* event is durable::

    async with open_store(url) as store, UsageRecorder(store) as recorder:
        counted = await recorder.record(event)   # returns once the event is committed
        # acknowledge the request only now

How batches form. A store that groups commits itself (``Store.groups_commits``: SQLite,
whose writer thread commits at once whatever queued during its previous commit) is handed
the events of each turn of the event loop together as the turn ends, and tells their callers
once the commit holding them is done: waiting for a batch to fill or for a write slot as
well would only make each event wait for the loop again. For other stores (PostgreSQL) the
recorder forms the batches. When it has been idle (no write for ``flush_interval``), the
first event waits up to ``flush_interval`` for company (or until ``max_batch`` events are
queued); while writes follow one another, it is written at once. Up to ``max_in_flight``
batches are handed to the store at once, and the queued events are spread over the free
slots: while the database commits one batch, the event loop acknowledges the previous one's
callers and forms the next, so neither waits for the other. Events that queue up while every
slot is busy are written as soon as one frees (they have waited a whole commit already): the
batch that freed it takes them in the same step of the event loop. Leaving the ``async
with`` block writes everything still queued. A store that learns that a batch is durable,
and all of it new, before its write returns (``on_durable``) has the batch's callers told
then, a turn of the event loop sooner.

Failures. A batch that fails with ``StoreUnavailableError`` is retried with exponential
backoff (``RetryPolicy``); events that a grouping store hands back so join the queue, and
events take that path until it has been written. While it retries, new events queue; once
``max_buffer`` events are queued or in flight, ``record`` raises ``UsageBackpressureError``
at once rather than letting memory grow while the database is down. A batch that still fails
after the last attempt (or fails with a non-transient error) fails each waiting ``record``
call with the error: those events are not durable and must not be acknowledged. Retrying
with the same ``request_id`` later is safe — recording is idempotent.

``RetryPolicy(attempts=None)`` retries without limit while the recorder runs: an outage then
loses nothing as long as the buffer holds, and callers wait until their event is durable (or
get ``UsageBackpressureError`` when the buffer is full). Once the recorder is closing it makes
at most ``attempts_when_closing`` more attempts, so shutdown cannot hang on a dead database.

Stalls. When events wait and no write completes for ``stall_after`` seconds (a write lock
held elsewhere, a database that is down), the recorder logs one WARNING saying how many
events wait and the last error, and ``stalled_since`` is the loop time the wait began; when a
write completes again (or nothing waits any more) it logs the stall's end and duration once
(``beamish.store._stall``).

Shutdown deadline. ``close_by(deadline)`` bounds the rest of the recorder's life: from then on
a failed batch is retried only while the retry would start before ``deadline``, and leaving
the ``async with`` block stops writing at ``deadline`` whatever is in progress. Events not
written then fail their callers (not acknowledged); ``lost`` counts every event that failed
once the recorder was closing, for the owner to report.

Options (defaults): ``max_batch`` 1000 events, ``flush_interval`` 0.005 s,
``max_in_flight`` 2 batches, ``max_buffer`` 100_000 events, ``retry`` ``RetryPolicy()``
(5 attempts, 0.05 s doubling to 2 s), ``hand_over`` True (hand events straight to a store
that groups commits itself; False forms batches for it too), ``stall_after`` 2.0 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from beamish.runtime.backoff import ExponentialBackoff
from beamish.store._backend import UsageOutcome
from beamish.store._stall import StallWatch
from beamish.store.errors import (
    RecorderClosedError,
    StoreError,
    StoreUnavailableError,
    UsageBackpressureError,
)
from beamish.store.models import UsageEvent

log = logging.getLogger("beamish.store")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed batch is retried."""

    attempts: int | None = 5
    """Attempts per batch while running; None retries until the recorder closes."""
    first_delay: float = 0.05
    max_delay: float = 2.0
    attempts_when_closing: int = 3
    """With ``attempts=None``: the limit that applies once the recorder is closing."""

    def gives_up(self, failed_attempts: int, closing: bool) -> bool:
        """Whether a batch that failed ``failed_attempts`` times should fail its callers."""
        limit = self.attempts
        if limit is None and closing:
            limit = self.attempts_when_closing
        return limit is not None and failed_attempts >= limit

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure: ``first_delay``
        doubling up to ``max_delay``, without jitter (``beamish.runtime.ExponentialBackoff``)."""
        return ExponentialBackoff(base=self.first_delay, cap=self.max_delay).delay(
            failed_attempts)


class UsageWriter(Protocol):
    """What the recorder writes to: ``Store.record_many``.

    A writer may also say it ``groups_commits`` (``Store.groups_commits``); one that does not
    say so is taken not to.
    """

    def record_many(self, events: Iterable[UsageEvent], *,
                    on_durable: Callable[[], object] | None = None,
                    ) -> Awaitable[frozenset[str]]:
        """Record events in one transaction; await the request ids newly counted. May call
        ``on_durable()`` on the event loop before that, once all are committed and new; where
        it groups commits, it takes the events at once and returns a future."""
        ...


_Pending = tuple[UsageEvent, "asyncio.Future[bool]"]


class UsageRecorder:
    """Batches usage events into group commits; see the module docstring."""

    def __init__(self, store: UsageWriter, *, max_batch: int = 1000, flush_interval: float = 0.005,
                 max_in_flight: int = 2, max_buffer: int = 100_000,
                 retry: RetryPolicy | None = None, hand_over: bool = True,
                 stall_after: float = 2.0) -> None:
        if not 1 <= max_batch <= max_buffer:
            raise ValueError(f"need 1 <= max_batch ({max_batch}) <= max_buffer ({max_buffer})")
        if max_in_flight < 1:
            raise ValueError(f"need max_in_flight >= 1, not {max_in_flight}")
        self._store = store
        self._grouping = store if hand_over and getattr(store, "groups_commits", False) else None
        self._handing: list[_Pending] = []  # this turn's events, for the grouping store
        self._handed = 0  # batches with the grouping store, not yet answered
        # A turn's events go to a grouping store in batches this size at most, as they go to
        # the slots of one that is not: a backlog is committed in parts, so the loop tells one
        # part's callers while the database writes the next.
        self._hand_over_size = max(1, max_batch // max_in_flight)
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._retry = retry or RetryPolicy()
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._writes: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the running one, once entered
        self._last_error: StoreError | None = None
        self._last_write_ended: float | None = None  # when a writer last found nothing queued
        self.batches_written = 0
        """Batches committed so far (a grouping store may commit several in one go)."""
        self.events_written = 0
        """Events committed so far (including repeats that counted nothing)."""
        self.lost = 0
        """Events failed to their callers once the recorder was closing (not written)."""
        self._stall = StallWatch(stall_after)
        self._stall_timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._gave_up = False

    @property
    def stalled_since(self) -> float | None:
        """The loop time since which events have waited without a write completing, once
        that has lasted ``stall_after``; None while writes make progress."""
        return self._stall.stalled_since

    def close_by(self, deadline: float) -> None:
        """Stop retrying, and stop writing on close, at loop time ``deadline``."""
        self._deadline = deadline if self._deadline is None else min(self._deadline, deadline)

    @property
    def buffered(self) -> int:
        """Events accepted but not yet durable (queued or being written)."""
        return len(self._queue) + self._in_flight

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("a UsageRecorder can be entered only once")
        # Owned by this object: __aexit__ always awaits it.
        # Kept for submit: on Python 3.11 asking for the running loop is a system call.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="beamish.store.UsageRecorder")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closing = True
        self._wake.set()
        task = self._task
        assert task is not None
        try:
            if self._deadline is None:
                await task
                return
            try:
                async with asyncio.timeout_at(self._deadline):
                    await asyncio.shield(task)
            except TimeoutError:
                # The deadline passed with writes in progress: they fail their callers.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._fail_handed()
        finally:
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None

    async def record(self, event: UsageEvent) -> bool:
        """Queue ``event``; return once it is durable.

        Returns:
            True if this call counted the event, False if its request id was already recorded.

        Raises:
            UsageBackpressureError: the buffer is full (the database is down or too slow).
            RecorderClosedError: the recorder is not running.
            StoreError: the batch holding the event could not be written.
        """
        return await self.submit(event)

    def submit(self, event: UsageEvent) -> asyncio.Future[bool]:
        """Queue ``event`` now, without waiting; the future is ``record``'s outcome.

        For callers that cannot wait — e.g. a cancelled request recording what it used on its
        way out: the recorder writes the event whether or not anyone awaits the future.

        Raises:
            UsageBackpressureError: the buffer is full.
            RecorderClosedError: the recorder is not running.
        """
        loop = self._loop
        if loop is None or self._task is None or self._closing or self._task.done():
            raise RecorderClosedError(
                "the usage recorder is not running; record inside 'async with UsageRecorder(...)'"
            )
        if self.buffered >= self._max_buffer:
            raise UsageBackpressureError(self._backpressure_message())
        future: asyncio.Future[bool] = loop.create_future()
        if self._flushed.is_set():  # nothing waited: a wait for the database starts
            self._flushed.clear()
            self._waiting(loop)
        if self._grouping is not None and not self._queue and not self._writes:
            if not self._handing:
                loop.call_soon(self._hand_over)
            self._handing.append((event, future))
            self._in_flight += 1
            if len(self._handing) >= self._hand_over_size:
                self._hand_over()
            return future
        self._queue.append((event, future))
        if len(self._queue) == 1 or len(self._queue) >= self._max_batch:
            self._wake.set()
        return future

    def _hand_over(self) -> None:
        """Hand the events gathered in this turn to the grouping store, together: called as
        the turn ends, and when they make a batch."""
        if not self._handing:  # handed over already, as a batch
            return
        batch, self._handing = self._handing, []
        assert self._grouping is not None
        told = False

        def durable() -> None:  # all committed and new: tell the callers in this very turn
            nonlocal told
            told = True
            self._handed_back(batch, frozenset(event.request_id for event, _ in batch))

        def answered(written: asyncio.Future[frozenset[str]]) -> None:
            error = written.exception()  # read even when told: nothing is left unretrieved
            if not told:
                self._handed_back(batch, error if isinstance(error, StoreError)
                                  else written.result())

        try:
            written = self._grouping.record_many([event for event, _ in batch],
                                                 on_durable=durable)
        except StoreError:
            taken = False  # the store is closed: the queue's write tells the callers so
        else:
            taken = isinstance(written, asyncio.Future)
            if isinstance(written, asyncio.Future):
                written.add_done_callback(answered)
            else:  # it does not group commits after all: form batches for it
                getattr(written, "close", lambda: None)()
                self._grouping = None
        if taken:
            self._handed += 1
            return
        self._in_flight -= len(batch)
        if self._task is not None and self._task.done():  # stopped: nobody writes the queue
            self._fail(batch, RecorderClosedError(
                "the usage recorder stopped before this event was written; it is not recorded"))
            return
        self._queue.extend(batch)
        self._wake.set()

    def _handed_back(self, batch: list[_Pending], outcome: UsageOutcome) -> None:
        self._in_flight -= len(batch)
        self._handed -= 1
        stopped = self._task is not None and self._task.done()
        if isinstance(outcome, StoreUnavailableError) and not stopped:
            self._last_error = outcome
            self._queue.extendleft(reversed(batch))  # retried from the queue, with backoff
        elif isinstance(outcome, StoreError):
            self._fail(batch, outcome)
        else:
            self._last_error = None
            self._committed(batch, outcome)
        if self._queue or self._closing:
            self._wake.set()
        if not self.buffered:
            self._drained()

    async def wait_flushed(self) -> None:
        """Return once nothing is buffered: every event queued so far is written (or failed)."""
        await self._flushed.wait()

    def _backpressure_message(self) -> str:
        cause = f"; last write error: {self._last_error}" if self._last_error else ""
        return (f"usage buffer is full ({self._max_buffer} events waiting to be written){cause}; "
                "do not acknowledge the request, retry it later")

    async def _run(self) -> None:
        try:
            # A write that fails with a bug stops the recorder; cancelling the recorder
            # cancels the writes, and each fails its callers (see _flush).
            async with asyncio.TaskGroup() as writes:
                while await self._wait_for_events():
                    await self._linger()
                    while self._queue:
                        if len(self._writes) < self._max_in_flight:
                            self._start_write(writes, self._take_share(own_slot=False))
                        else:
                            await asyncio.wait(self._writes,
                                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._fail_queued()

    def _start_write(self, writes: asyncio.TaskGroup, batch: list[_Pending]) -> None:
        write = writes.create_task(self._flush(batch))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _wait_for_events(self) -> bool:
        """Wait until events are queued (True) or the recorder closes with none (False), and
        none handed to the store may come back to be retried."""
        while not self._queue:
            if self._closing and not self._handed and not self._handing:
                return False
            self._wake.clear()
            await self._wake.wait()
        return True

    async def _linger(self) -> None:
        # Coming from idle: give the first event a moment to gather company. Not while
        # writes come one after another (the last ended less than an interval ago): the
        # events of a busy moment gather while the writes are in flight, and a pause here
        # would only add to every one's wait.
        if len(self._queue) >= self._max_batch or self._closing or self._writes:
            return
        ended = self._last_write_ended
        loop = asyncio.get_running_loop()
        if ended is not None and loop.time() - ended < self._flush_interval:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_interval):
                await self._wake.wait()

    def _take_share(self, *, own_slot: bool) -> list[_Pending]:
        """The next batch: the queued events spread over the free slots (with the asking
        writer's own, if ``own_slot``), at most ``max_batch`` of them."""
        free = self._max_in_flight - len(self._writes) + own_slot
        count = min(-(-len(self._queue) // free), self._max_batch)
        batch = [self._queue.popleft() for _ in range(count)]
        self._in_flight += count
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        """A writer: write ``batch``, then the next share of the queue, until it is empty.

        A writer that has finished a batch takes the next one itself, in the same step of
        the event loop, so the database is handed more work at once. (Handing back to
        ``_run`` to start a new writer took four more steps of a loop that is busy under
        load — each a millisecond or more — and the database sat idle meanwhile.)
        """
        while True:
            await self._commit(batch)
            if not self._queue:
                self._last_write_ended = asyncio.get_running_loop().time()
                return
            batch = self._take_share(own_slot=True)

    async def _commit(self, batch: list[_Pending]) -> None:
        """Write ``batch``; tell each caller how it went — as soon as the store says all were
        committed and new (``on_durable``), else once the write returns."""
        told = False

        def durable() -> None:
            nonlocal told
            told = True
            self._committed(batch, frozenset(event.request_id for event, _ in batch))

        try:
            counted = await self._write([event for event, _ in batch], durable)
        except StoreError as error:
            self._fail(batch, error)
        except BaseException:
            # Cancelled (or a bug): the recorder stops, but no caller may wait forever.
            self._fail(batch, RecorderClosedError(
                "the usage recorder stopped while writing this event; it may or may not be "
                "recorded, so retry it with the same request_id"))
            raise
        else:
            if not told:
                self._committed(batch, counted)
        finally:
            self._in_flight -= len(batch)
            if not self.buffered:
                self._drained()

    def _committed(self, batch: list[_Pending], counted: frozenset[str]) -> None:
        if self._gave_up:  # counted lost while in flight (_fail_handed), yet committed
            self.lost = max(0, self.lost - len(batch))
        _resolve(batch, counted)
        self.batches_written += 1
        self.events_written += len(batch)
        if self._stall.waiting_since is not None and self._loop is not None:
            self._stall_ended(self._stall.progress(self._loop.time()))

    def _fail(self, batch: list[_Pending], error: StoreError) -> None:
        _fail(batch, error)
        if self._closing and not self._gave_up:  # after giving up, counted already
            self.lost += len(batch)

    def _drained(self) -> None:
        """Nothing is buffered any more."""
        self._flushed.set()
        if self._loop is not None:
            self._stall_ended(self._stall.idle(self._loop.time()))

    # -- stalls (beamish.store._stall) ------------------------------------------------------

    def _waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stall.busy(loop.time())
        if self._stall_timer is None:
            self._arm_stall_check(loop)

    def _arm_stall_check(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._stall.next_check(loop.time())
        self._stall_timer = None if when is None else loop.call_at(when, self._check_stall)

    def _check_stall(self) -> None:
        loop = self._loop
        assert loop is not None
        self._stall_timer = None
        if self._stall.check(loop.time()):
            waited = loop.time() - (self._stall.stalled_since or 0.0)
            cause = f"; last error: {self._last_error}" if self._last_error else ""
            log.warning("store stalled: %d usage events have waited %.1f s and no write has "
                        "completed%s", self.buffered, waited, cause)
        self._arm_stall_check(loop)

    def _stall_ended(self, duration: float | None) -> None:
        if duration is not None:
            log.warning("store stall ended after %.1f s (%d usage events still waiting)",
                        duration, self.buffered)

    def _fail_handed(self) -> None:
        """Count, as lost, events still with a grouping store when writing stopped: their
        answers arrive (if ever) after the recorder is gone."""
        self._gave_up = True
        self.lost += self._in_flight

    async def _write(self, events: list[UsageEvent],
                     on_durable: Callable[[], object]) -> frozenset[str]:
        failures = 0
        while True:
            try:
                counted = await self._store.record_many(events, on_durable=on_durable)
            except StoreUnavailableError as error:
                self._last_error = error
                failures += 1
                delay = self._retry.delay(failures)
                if self._retry.gives_up(failures, self._closing) or self._past_deadline(delay):
                    raise
                await asyncio.sleep(delay)
            else:
                self._last_error = None
                return counted

    def _past_deadline(self, delay: float) -> bool:
        deadline = self._deadline
        return deadline is not None and asyncio.get_running_loop().time() + delay >= deadline

    def _fail_queued(self) -> None:
        # Reached on normal close (queue already empty) and if the task was cancelled.
        queued, self._queue = list(self._queue), deque()
        self._fail(queued, RecorderClosedError(
            "the usage recorder stopped before this event was written; it is not recorded"))
        if not self._in_flight:
            self._drained()


def _fail(batch: list[_Pending], error: StoreError) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _resolve(batch: list[_Pending], counted: frozenset[str]) -> None:
    # A request id repeated within the batch counts once: the first caller gets True.
    credited: set[str] = set()
    for event, future in batch:
        first = event.request_id in counted and event.request_id not in credited
        credited.add(event.request_id)
        if not future.done():  # the caller may have been cancelled meanwhile
            future.set_result(first)
