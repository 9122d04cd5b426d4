"""The job tree: actors that claim jobs, run them, keep their leases and write their ends.

::

    beamish.jobs (Supervisor, one_for_one)
    ├── enqueuer        Enqueuer: new jobs, inserted in group commits
    ├── finisher        Finisher: attempt results, written in group commits
    ├── notifier        Notifier: PostgreSQL LISTEN → wakes the queue's producer; job
    │                   events to and from other processes; listens again, with
    │                   backoff, when its connection is lost
    ├── leases          LeaseKeeper: renews this process's leases every lease_s / 3
    ├── pruner          Pruner: deletes finished jobs older than prune_after_s
    └── queue.<name>    Supervisor (one_for_all), one per queue
        ├── worker.0 … worker.<concurrency - 1>     JobWorker: one job at a time
        └── producer                                QueueProducer: claims in batches

**Demand.** A queue's producer knows which of its workers are idle; it claims as many jobs
as there are (at most ``claim_batch``) in one query and hands one to each. A worker that
finishes tells the producer, which claims again in its next turn — so the workers freed
while one claim ran are served by the next claim together. A claim that finds fewer jobs
than asked means the queue is drained: the producer then waits for its poll timer, a local
enqueue, or a NOTIFY.

**Failure.** A worker runs its job in a task it owns (cancelled when the worker exits, in
any way). A crash anywhere in a queue restarts the whole queue group (one_for_all): the
producer's view of idle workers is rebuilt with them. Jobs whose attempts were cut short
keep their leases until they expire, then any process runs them again.

**Group commits.** Enqueuers hand new jobs to the enqueuer, workers hand attempt results
to the finisher; each writes whatever arrived while its previous transaction ran in one
transaction, and answers each sender once its part is durable. A write that fails in any
way (a database error, or a bug) fails every sender of its batch with a ``StoreError``
saying why, and the writer goes on with the next batch: no sender is left waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from beamish.jobs.context import (
    ENQUEUER,
    FINISHER,
    JOBS_SUP,
    LEASES,
    NOTIFIER,
    PRUNER,
    JobsContext,
    producer_name,
    worker_name,
)
from beamish.jobs.errors import JobLimitError, JobsNotRunningError
from beamish.jobs.execution import run_attempt
from beamish.jobs.models import JobEvent
from beamish.jobs.relay import Outbox, decode, encode
from beamish.jobs.schedule import OUTPUT_STATUS
from beamish.runtime import (
    Actor,
    ActorRef,
    Caller,
    ChildSpec,
    NoProcessError,
    cast,
    child_spec,
    on_exit,
    send,
)
from beamish.runtime.backoff import ExponentialBackoff, Jitter
from beamish.runtime.exits import ExitReason
from beamish.runtime.supervisor import supervisor_spec
from beamish.runtime.timers import Timer, send_after, send_interval
from beamish.store import StoreError
from beamish.store.job_models import AttemptResult, EnqueuedJob, JobRecord, NewJob

log = logging.getLogger("beamish.jobs")

_EVENT_OF_STATE = {"completed": "completed", "retryable": "retried", "discarded": "failed",
                   "cancelled": "cancelled"}


class JobWorker(Actor):
    """Runs one job at a time, in a task of its own; ``("cancel", job_id)`` stops it."""

    def init(self, arg: tuple[JobsContext, str]) -> None:
        self.ctx, self.queue = arg
        self.task: asyncio.Task[None] | None = None
        self.job: JobRecord | None = None
        on_exit(self.ref, lambda _ref, _reason: self._cancel())

    def handle_info(self, message: Any) -> None:
        match message:
            case ("run", JobRecord() as job):
                self.job = job
                self.ctx.running[job.id] = self.ref
                self.task = asyncio.get_running_loop().create_task(self._attempt(job))
            case ("cancel", int() as job_id) if self.job is not None and self.job.id == job_id:
                self._cancel()
            case ("done", int() as job_id) if self.job is not None and self.job.id == job_id:
                self.ctx.running.pop(job_id, None)
                self.job = self.task = None
                producer = self.ctx.services.node.whereis(producer_name(self.queue))
                if producer is not None:  # else it is restarting, with these workers
                    send(producer, ("idle", self.ref))
            case ("crashed", Exception() as error):
                raise error  # a bug: the queue group restarts; the lease brings the job back

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _attempt(self, job: JobRecord) -> None:
        ctx = self.ctx
        started = asyncio.get_running_loop().time()
        try:
            ctx.publish(_event("started", job, job.attempt))
            result = await run_attempt(ctx, job)
            written = await _finish(ctx, result)
            if written:
                ctx.publish(_result_event(job, result))
            producer = ctx.services.node.whereis(producer_name(self.queue))
            if written and result.run_at is not None and producer is not None:
                # A retry: wake the queue when it is due, rather than at a later poll.
                delay = (result.run_at - ctx.now()).total_seconds()
                send_after(producer, "wake", max(delay, 0.0))
        except (StoreError, JobsNotRunningError) as error:
            # The lease runs out, and the job runs again (here or in another process).
            log.warning("job %d: its end could not be written (%s); it runs again once its "
                        "lease expires", job.id, error)
        except Exception as error:
            send(self.ref, ("crashed", error))
        finally:
            ctx.queue_load(self.queue).finished(asyncio.get_running_loop().time() - started)
            send(self.ref, ("done", job.id))


async def _finish(ctx: JobsContext, result: AttemptResult) -> bool:
    return bool(await submit(ctx, FINISHER, result))


def _event(kind: Any, job: JobRecord, attempt: int, *, status: Any = "processing",
           **fields: Any) -> JobEvent:
    args = job.args
    return JobEvent(event=kind, job_id=job.id, output_id=job.output_id, user_id=job.user_id,
                    queue=job.queue, status=status, attempt=attempt,
                    template=args.get("template"), **fields)


def _result_event(job: JobRecord, result: AttemptResult) -> JobEvent:
    return _event(_EVENT_OF_STATE[result.state], job, job.attempt,
                  status=OUTPUT_STATUS[result.state], model=result.model,
                  template_version=result.template_version, latency_ms=result.latency_ms,
                  error=result.error, error_kind=result.error_kind,
                  error_reason=result.error_reason, retry_at=result.run_at)


class QueueProducer(Actor):
    """Claims a queue's jobs in batches for its idle workers (see the module docs)."""

    def init(self, arg: tuple[JobsContext, str, int]) -> None:
        self.ctx, self.queue, concurrency = arg
        node = self.ctx.services.node
        self.idle: list[ActorRef] = []
        for index in range(concurrency):
            ref = node.whereis(worker_name(self.queue, index))
            if ref is not None:
                self.idle.append(ref)
        self.drained = False
        self.claim_due = False
        self.poll: Timer = send_interval(self.ref, "poll", self.ctx.settings.poll_interval_s)
        self._claim_soon()

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("idle", ActorRef() as worker):
                self.idle.append(worker)
                if not self.drained:
                    self._claim_soon()
            case "poll" | "wake":
                self.drained = False
                self._claim_soon()
            case "claim":
                self.claim_due = False
                await self._claim()

    def _claim_soon(self) -> None:
        if not self.claim_due and self.idle:
            self.claim_due = True
            send(self.ref, "claim")

    async def _claim(self) -> None:
        ctx = self.ctx
        wanted = min(len(self.idle), ctx.settings.claim_batch)
        if wanted == 0:
            return
        now = ctx.now()
        lost: list[JobRecord] = []
        try:
            jobs = await ctx.services.store.claim_jobs(
                self.queue, limit=wanted, leased_by=ctx.leased_by,
                lease_until=now + timedelta(seconds=ctx.settings.lease_s), now=now,
                discarded=lost)
        except StoreError as error:
            log.warning("queue %r: claiming failed (%s); trying again at the next poll",
                        self.queue, error)
            return
        for job in lost:  # its last attempt's worker died: this claim ended the job
            ctx.publish(_event("failed", job, job.attempt, status="failed",
                               error=job.last_error, error_kind="lease",
                               error_reason="last_attempt_lost"))
        for job in jobs:
            send(self.idle.pop(), ("run", job))
        self.drained = len(jobs) < wanted
        if not self.drained:
            self._claim_soon()

    def terminate(self, reason: ExitReason) -> None:
        self.poll.cancel()


class _GroupWriter(Actor):
    """Writes what arrives while its previous write runs in one transaction (a group
    commit); each sender's future gets its own outcome once that transaction is durable."""

    what = "write"

    def init(self, ctx: JobsContext) -> None:
        self.trap_exit()  # an orderly stop runs terminate, which answers every sender
        self.ctx = ctx
        self.pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self.writing: list[tuple[Any, asyncio.Future[Any]]] = []  # the batch being written
        self.flush_due = False

    def handle_cast(self, request: Any) -> None:
        item, future = request
        self.pending.append((item, future))
        if not self.flush_due:
            self.flush_due = True
            send(self.ref, "flush")

    async def handle_info(self, message: Any) -> None:
        if message != "flush":
            return
        self.flush_due = False
        batch, self.pending = self.pending, []
        self.writing = batch
        try:
            outcomes = await self.write([item for item, _ in batch])
        except StoreError as error:
            self._fail(batch, error)
            return
        except Exception as error:  # a bug; CancelledError is not an Exception: it passes
            # Each sender gets a clear error, and this writer goes on serving: a crash here
            # would leave the futures of the batch it took unanswered (their callers hung).
            log.error("the job %sr failed to write a batch of %d (%s: %s); each of its "
                      "senders is told", self.what, len(batch), type(error).__name__, error,
                      exc_info=error)
            self._fail(batch, StoreError(
                f"the job {self.what}r failed to write this (with {len(batch) - 1} other "
                f"items of its batch): {type(error).__name__}: {error}"))
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    @staticmethod
    def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], error: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def write(self, items: list[Any]) -> list[Any]:
        """One outcome per item (a result, or the exception its sender gets)."""
        raise NotImplementedError

    def terminate(self, reason: ExitReason) -> None:
        # A batch cut short mid-write may or may not have committed: its senders are told
        # so rather than left waiting; what waited for the next batch was not written.
        self._fail(self.writing, StoreError(
            f"the job {self.what}r stopped while writing this; it may or may not be written"))
        self._fail(self.pending, StoreError(f"the job {self.what}r stopped first"))


class Finisher(_GroupWriter):
    """Writes attempt results; each worker learns whether its result was written (False:
    the job's lease was no longer this process's)."""

    what = "finishe"

    async def write(self, items: list[Any]) -> list[Any]:
        written = await self.ctx.services.store.finish_jobs(items)
        return [result.job_id in written for result in items]


class Enqueuer(_GroupWriter):
    """Inserts new jobs; callers that enqueue together share one transaction. A user's jobs
    beyond ``max_unfinished_per_user`` are refused (``JobLimitError``); a batch the database
    refuses is written again one job at a time, so only the bad job fails.

    Each job created is published ``queued`` (and its queue's producer woken) as soon as
    its transaction has committed, in this actor's turn — before its caller hears of it,
    and so, in practice, before anything its claim causes anywhere (the insert's NOTIFY
    wakes other processes only at that commit)."""

    what = "enqueue"

    async def write(self, items: list[Any]) -> list[Any]:
        store = self.ctx.services.store
        admitted = await self._admit(items)
        accepted = [item for item, refusal in zip(items, admitted, strict=True)
                    if refusal is None]
        try:
            outcomes = await store.enqueue_jobs(accepted)
        except StoreError:
            if len(accepted) == 1:
                raise
            outcomes = [await _one_by_one(store, item) for item in accepted]
        self._announce(accepted, outcomes)
        written = iter(outcomes)
        return [next(written) if refusal is None else refusal for refusal in admitted]

    def _announce(self, items: list[NewJob], outcomes: Sequence[Any]) -> None:
        """Publish ``queued`` for each job created, and wake the queues with one due."""
        ctx = self.ctx
        due: set[str] = set()
        for item, outcome in zip(items, outcomes, strict=True):
            if not isinstance(outcome, EnqueuedJob) or not outcome.created:
                continue  # refused, or the pending job of the same unique key
            job = outcome.job
            ctx.queue_load(job.queue).backlog += 1
            ctx.publish(JobEvent(event="queued", job_id=job.id, output_id=job.output_id,
                                 user_id=job.user_id, queue=job.queue, status="pending",
                                 template=item.template_name))
            if not item.scheduled:
                due.add(job.queue)
        for queue in due:
            producer = ctx.services.node.whereis(producer_name(queue))
            if producer is not None:  # none: this process runs no jobs
                send(producer, "wake")

    async def _admit(self, items: list[NewJob]) -> list[JobLimitError | None]:
        """None for each item within its user's cap, else the refusal. An item whose
        unique key the user's pending or running job holds (or an item admitted before it
        in this batch) creates nothing: it is admitted, and not counted, even at the cap.
        (A held job that finishes before the insert lets that one job be created beyond
        the cap, as concurrent enqueues of other processes may.)"""
        store = self.ctx.services.store
        limit = self.ctx.settings.max_unfinished_per_user
        counts = await store.count_unfinished_jobs([item.user_id for item in items])
        keyed = [(item.user_id, item.unique_key) for item in items
                 if item.unique_key is not None]
        held = await store.held_unique_keys(keyed) if keyed else set()
        admitted: list[JobLimitError | None] = []
        for item in items:
            key = None if item.unique_key is None else (item.user_id, item.unique_key)
            if key is not None and key in held:
                admitted.append(None)
                continue
            count = counts.get(item.user_id, 0)
            if count >= limit:
                admitted.append(JobLimitError(item.user_id, limit))
                continue
            admitted.append(None)
            counts[item.user_id] = count + 1
            if key is not None:
                held.add(key)
        return admitted


async def _one_by_one(store: Any, item: Any) -> Any:
    try:
        return await store.enqueue_job(item)
    except StoreError as error:
        return error


async def submit(ctx: JobsContext, name: str, item: Any) -> Any:
    """Hand ``item`` to the group writer ``name`` of ``ctx``'s node; its outcome once durable.

    Raises:
        JobsNotRunningError: the writer is not running (the application is stopped).
    """
    writer = ctx.services.node.whereis(name)  # this application's, whoever calls
    if writer is None:
        raise JobsNotRunningError(f"{name} is not running: use app.jobs inside "
                                  "'async with Application(...)'")
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def exited(_ref: ActorRef, _reason: ExitReason) -> None:
        # The writer died (killed, or a crash) before answering: say so, never hang.
        if not future.done():
            future.set_exception(JobsNotRunningError(
                f"{name} stopped before it wrote this; it may or may not be written"))

    watch = on_exit(writer, exited)
    try:
        await cast(writer, (item, future))
        return await future
    except NoProcessError:
        raise JobsNotRunningError(f"{name} stopped: use app.jobs inside "
                                  "'async with Application(...)'") from None
    finally:
        watch.cancel()


class LeaseKeeper(Actor):
    """Renews the leases of the jobs this process runs; stops those it lost (cancelled, or
    taken by another process after a stall) in their workers. When the tree stops (after
    the queues, whose workers' attempts are cut short), it gives their leases back, so the
    jobs run again at once — here after a restart, or in another process — rather than
    when the leases would have expired; each job given back has its ``retried`` event."""

    def init(self, ctx: JobsContext) -> None:
        self.trap_exit()
        self.ctx = ctx
        self.timer = send_interval(self.ref, "renew", ctx.settings.lease_s / 3)

    async def handle_info(self, message: Any) -> None:
        if message != "renew" or not self.ctx.running:
            return
        ctx = self.ctx
        ids = list(ctx.running)
        try:
            held = await ctx.services.store.renew_leases(
                ids, leased_by=ctx.leased_by,
                lease_until=ctx.now() + timedelta(seconds=ctx.settings.lease_s))
        except StoreError as error:
            log.warning("renewing %d job leases failed (%s)", len(ids), error)
            return
        for job_id in ids:
            worker = ctx.running.get(job_id)
            if job_id not in held and worker is not None:
                send(worker, ("cancel", job_id))

    async def terminate(self, reason: ExitReason) -> None:
        self.timer.cancel()
        ctx = self.ctx
        orphans = [job_id for job_id, worker in ctx.running.items() if not worker.alive]
        if not orphans:
            return
        try:
            released = await ctx.services.store.release_jobs(orphans, leased_by=ctx.leased_by)
        except StoreError as error:
            log.warning("giving back %d job leases failed (%s); they run again once the "
                        "leases expire", len(orphans), error)
            return
        for job in released:
            ctx.running.pop(job.id, None)
            ctx.publish(_event("retried", job, job.attempt, status="pending",
                               error=job.last_error, error_kind="lease",
                               error_reason="released_at_shutdown", retry_at=job.run_at))
        log.info("gave back the leases of %d interrupted jobs", len(released))


class Pruner(Actor):
    """Deletes finished jobs older than ``prune_after_s``, every ``prune_interval_s``; call
    ``"prune"`` to do it now (the reply is how many were deleted)."""

    def init(self, ctx: JobsContext) -> None:
        self.ctx = ctx
        self.timer = send_interval(self.ref, "prune", ctx.settings.prune_interval_s)

    async def handle_call(self, request: Any, caller: Caller) -> int:
        if request != "prune":
            raise ValueError(f"unknown pruner request {request!r}")
        return await self._prune()

    async def handle_info(self, message: Any) -> None:
        if message == "prune":
            try:
                await self._prune()
            except StoreError as error:
                log.warning("pruning finished jobs failed (%s)", error)

    async def _prune(self) -> int:
        ctx = self.ctx
        pruned = await ctx.services.store.prune_jobs(
            ctx.now() - timedelta(seconds=ctx.settings.prune_after_s))
        if pruned:
            log.info("pruned %d finished jobs", pruned)
        return pruned

    def terminate(self, reason: ExitReason) -> None:
        self.timer.cancel()


RELISTEN = ExponentialBackoff(base=0.5, cap=30.0, jitter=Jitter.FULL)
"""Waits before listening again after LISTEN failed or its connection was lost."""

SEND_TIMEOUT_S: Final = 2.0
"""How long one send of job events to other processes may take before its events are left
out. A database that does not answer must not hold the notifier — nor the tree's stop,
whose last send is in ``terminate``: a worker is killed 5 s (its child spec's shutdown)
after it is told to stop, and the listening connection is still to close then."""


class Notifier(Actor):
    """Wakes a queue's producer when another process inserts a job (PostgreSQL NOTIFY),
    and carries job events between the processes sharing the queue; where the database
    cannot notify, producers poll (and one process has every event).

    **Events.** Where the store can notify, it sets ``ctx.outbox``: events published in
    this process are sent in batches (what was published while the previous send ran, in
    one statement), and the events other processes send are handed to this process's
    listeners — so a job run anywhere reaches its user's channel here
    (``beamish.jobs.relay``).

    **Losing the connection.** Producers poll all along (every ``poll_interval_s``), so
    while the listening connection is down — LISTEN failed, or the server restarted or
    ended it — jobs still run, later. The notifier listens again by itself, after
    ``RELISTEN``'s backoff (0.5 s doubling to 30 s, full jitter) for each failure in a row;
    a connection that stops answering (a query every ``listen_check_s`` [30 s] gets no
    answer within as long) counts as lost;
    once listening again it wakes every producer, since the notifications sent meanwhile
    were lost (and so were other processes' events).

    **A database that does not answer.** A send that takes more than ``SEND_TIMEOUT_S``
    [2 s] is given up, its events left out with a warning: so the notifier goes on, and
    stops in time (its last send, of the leases given back at shutdown, is bounded too)."""

    async def init(self, ctx: JobsContext) -> None:
        self.trap_exit()
        self.ctx = ctx
        self.retry: Timer | None = None
        self.failures = 0
        self.stop_listening: Callable[[], Awaitable[None]] | None = None
        self.outbox: Outbox | None = None
        await self._listen()

    async def _listen(self) -> None:
        ctx = self.ctx
        try:
            self.stop_listening = await ctx.services.store.listen_jobs(
                self._wake, on_event=self._events, on_lost=self._lost,
                check_every_s=ctx.settings.listen_check_s)
        except StoreError as error:
            self._relay_events()  # the database notifies; this connection failed
            self._listen_later(f"listening for new jobs failed ({error})")
            return
        if self.stop_listening is None:
            return  # the database cannot notify
        self._relay_events()
        if self.failures:
            log.info("listening for new jobs again, after %d failures", self.failures)
            for queue in ctx.settings.queues:
                self._wake(queue)
        self.failures = 0

    def _listen_later(self, why: str) -> None:
        self.failures += 1
        delay = RELISTEN.delay(self.failures, self.ctx.random)
        log.warning("%s; producers poll, and listening is tried again in %.2f s", why, delay)
        self.retry = send_after(self.ref, "listen", delay)

    def _relay_events(self) -> None:
        if self.outbox is None:  # a restarted notifier's replaces its predecessor's
            self.outbox = self.ctx.outbox = Outbox(lambda: send(self.ref, "relay"))

    def _wake(self, queue: str) -> None:
        producer = self.ctx.services.node.whereis(producer_name(queue))
        if producer is not None:
            send(producer, "wake")

    def _events(self, payload: str) -> None:
        for event in decode(payload, node=self.ctx.leased_by):
            self.ctx.deliver(event)

    def _lost(self) -> None:
        send(self.ref, "lost")  # from the driver's callback: handled in this actor's turn

    async def handle_info(self, message: Any) -> None:
        match message:
            case "relay":
                await self._send_events()
            case "listen" if self.stop_listening is None:
                self.retry = None
                await self._listen()
            case "lost" if self.stop_listening is not None:
                stop, self.stop_listening = self.stop_listening, None
                await stop()
                self._listen_later("the connection listening for new jobs was lost")

    async def _send_events(self) -> None:
        ctx = self.ctx
        events = [] if self.outbox is None else self.outbox.take()
        if not events:
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await ctx.services.store.notify_job_events(encode(ctx.leased_by, events))
        except StoreError as error:
            log.warning("sending %d job events to other processes failed (%s)",
                        len(events), error)
        except TimeoutError:
            log.warning("sending %d job events to other processes took more than %g s; "
                        "they are left out", len(events), SEND_TIMEOUT_S)

    async def terminate(self, reason: ExitReason) -> None:
        if self.retry is not None:
            self.retry.cancel()
        await self._send_events()  # the leases given back just before, among them
        if self.ctx.outbox is self.outbox:
            self.ctx.outbox = None
        if self.stop_listening is not None:
            await self.stop_listening()


def jobs_spec(ctx: JobsContext) -> ChildSpec:
    """The job tree's child spec (for the application's root supervisor)."""
    # The notifier stops after the lease keeper (children stop in reverse), so the events
    # of the jobs given back at shutdown still reach other processes.
    children = [child_spec(Enqueuer, ctx, id="enqueuer", name=ENQUEUER),
                child_spec(Finisher, ctx, id="finisher", name=FINISHER),
                child_spec(Notifier, ctx, id="notifier", name=NOTIFIER),
                child_spec(LeaseKeeper, ctx, id="leases", name=LEASES),
                child_spec(Pruner, ctx, id="pruner", name=PRUNER)]
    if ctx.settings.enabled:
        children += [_queue_spec(ctx, queue, settings.concurrency)
                     for queue, settings in ctx.settings.queues.items()]
    return supervisor_spec(children, id="jobs", name=JOBS_SUP)


def _queue_spec(ctx: JobsContext, queue: str, concurrency: int) -> ChildSpec:
    workers = [child_spec(JobWorker, (ctx, queue), id=f"worker.{index}",
                          name=worker_name(queue, index)) for index in range(concurrency)]
    producer = child_spec(QueueProducer, (ctx, queue, concurrency), id="producer",
                          name=producer_name(queue))
    return supervisor_spec([*workers, producer], id=f"queue.{queue}", strategy="one_for_all")


__all__ = ["Finisher", "JobWorker", "LeaseKeeper", "Notifier", "Pruner", "QueueProducer",
           "jobs_spec"]

