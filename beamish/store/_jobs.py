"""The job queue's SQL (``jobs``, ``job_outputs``, ``job_feedback``): the one place that
talks to those tables, as procrastinate's manager is.

Rules the SQL keeps, for both backends:

* **Uniqueness is the database's.** Enqueue is one ``INSERT … ON CONFLICT`` on the partial
  unique index over unfinished jobs' ``(user_id, unique_key)`` (a key is one user's: another
  user's same key is another job); on a conflict the no-op update returns
  the existing row (``created`` is False), and no output row is written.
* **Claims are leases.** A claim moves up to ``limit`` jobs of a queue to ``executing`` with
  ``lease_until`` and ``leased_by``, in one statement: PostgreSQL picks them with
  ``FOR UPDATE SKIP LOCKED`` (concurrent claimers skip each other's rows), SQLite with a
  subquery under its single write lock. A job whose lease expired is claimable like an
  available one: a dead worker's job runs again with no rescue step. One whose lease expired
  on its last attempt is discarded in the same transaction.
* **Only the lease holder finishes a job.** ``finish_jobs`` and ``renew_leases`` touch a job
  only while it is ``executing`` and leased by the caller, so an attempt that lost its lease
  (rescued elsewhere, or cancelled) changes nothing: its output is completed once.
"""

from __future__ import annotations

import base64
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from beamish.compact_json import dumps
from beamish.store._backend import Backend, Executor, utc_now
from beamish.store.errors import NotFoundError
from beamish.store.job_models import (
    AttemptResult,
    CancelledJob,
    EnqueuedJob,
    FeedbackRecord,
    FeedbackStats,
    JobRecord,
    NewJob,
    OutputFilter,
    OutputPage,
    OutputRecord,
    Rating,
)
from beamish.store.text import NUL

_UNFINISHED = "('available', 'scheduled', 'executing', 'retryable')"
_FINISHED = "('completed', 'discarded', 'cancelled')"
RELEASED = "the worker's process stopped during the attempt; the job runs again"
LOST_LAST_ATTEMPT = ("the worker running its last attempt stopped (its lease expired) and "
                     "no attempts are left")

JOBS_CHANNEL = "beamish_jobs"
"""What a job insert notifies (the ``jobs`` table's trigger), with the job's queue."""
JOB_EVENTS_CHANNEL = "beamish_job_events"
"""Where ``notify_job_events`` sends job events for other processes."""

_JOB_COLUMNS = 10
_INSERT_ROWS = 100
"""Jobs per INSERT statement (SQLite binds at most 32766 variables in one)."""
_INSERT_JOBS = f"""INSERT INTO jobs (queue, priority, state, max_attempts, run_at, unique_key,
        user_id, output_id, args, inserted_at, updated_at)
    VALUES {{values}}
    ON CONFLICT (user_id, unique_key) WHERE unique_key IS NOT NULL
        AND state IN {_UNFINISHED}
    DO UPDATE SET unique_key = excluded.unique_key
    RETURNING *"""

_INSERT_OUTPUT = """INSERT INTO job_outputs (output_id, job_id, user_id, template_name,
        template_version, variables, task_type, request, format, status, parent_output_id,
        relation, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12)"""

# $1 queue, $2 now, $3 lease_until, $4 leased_by, $5 limit
#
# The runnable jobs are two sets, each read from its own partial index in claim order and
# cut at the limit, then merged: a due job (jobs_claimable, walked in (priority, run_at, id)
# order) and one whose lease expired (jobs_leased). One OR over both would make the
# database collect and sort the whole backlog on every claim.
_DUE = """queue = $1 AND state IN ('available', 'scheduled', 'retryable') AND run_at <= $2"""
_LEASE_LOST = """queue = $1 AND state = 'executing' AND lease_until < $2
        AND attempt < max_attempts"""
_LAST_LOST = """queue = $1 AND state = 'executing' AND lease_until < $2
        AND attempt >= max_attempts"""
_CLAIM_ORDER = "ORDER BY priority, run_at, id LIMIT $5"
_DUE_OR_LOST = f"""SELECT (EXISTS (SELECT 1 FROM jobs WHERE {_DUE})
            OR EXISTS (SELECT 1 FROM jobs WHERE {_LEASE_LOST})) AS due,
        EXISTS (SELECT 1 FROM jobs WHERE {_LAST_LOST}) AS lost"""
_CLAIM_SET = """state = 'executing', attempt = attempt + 1, lease_until = $3, leased_by = $4,
        attempted_at = $2, updated_at = $2"""
_CLAIM = {
    # Each set is locked as it is read, skipping rows other claimers hold; the expired
    # leases locked but not picked stay locked only until this transaction commits.
    "postgres": f"""WITH due AS (
            SELECT id, priority, run_at FROM jobs WHERE {_DUE}
            {_CLAIM_ORDER} FOR UPDATE SKIP LOCKED),
        lost AS (
            SELECT id, priority, run_at FROM jobs WHERE {_LEASE_LOST}
            {_CLAIM_ORDER} FOR UPDATE SKIP LOCKED),
        picked AS (
            SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM lost) AS runnable
            {_CLAIM_ORDER})
        UPDATE jobs SET {_CLAIM_SET} FROM picked WHERE jobs.id = picked.id
        RETURNING jobs.*""",
    "sqlite": f"""UPDATE jobs SET {_CLAIM_SET} WHERE id IN (
            SELECT id FROM (
                SELECT * FROM (SELECT id, priority, run_at FROM jobs WHERE {_DUE}
                    {_CLAIM_ORDER})
                UNION ALL
                SELECT * FROM (SELECT id, priority, run_at FROM jobs WHERE {_LEASE_LOST}
                    {_CLAIM_ORDER}))
            {_CLAIM_ORDER})
        RETURNING *""",
}
_DISCARD_SET = """state = 'discarded', last_error = $3, finished_at = $2, updated_at = $2,
        lease_until = NULL"""
_DISCARD_LOST = {
    # Locked in id order, as finish_jobs, renew_leases and release_jobs lock theirs (a plain
    # UPDATE would lock in scan order, and could deadlock with them); a row another
    # transaction holds is skipped, and discarded by a later claim if still lost.
    "postgres": f"""UPDATE jobs SET {_DISCARD_SET} WHERE id IN (
            SELECT id FROM jobs WHERE {_LAST_LOST} ORDER BY id FOR UPDATE SKIP LOCKED)
        RETURNING *""",
    "sqlite": f"UPDATE jobs SET {_DISCARD_SET} WHERE {_LAST_LOST} RETURNING *",
}
_OUTPUT_STARTED = """UPDATE job_outputs SET status = 'processing', attempts = $2,
        started_at = COALESCE(started_at, $3) WHERE output_id = $1"""
_OUTPUT_FAILED = """UPDATE job_outputs SET status = 'failed', error = $2, completed_at = $3
    WHERE output_id = $1"""

_FINISH_ROWS = 1000
"""Results per finishing UPDATE (six variables each, under SQLite's 32766)."""
_FINISH_VALUES = ("bigint", "text", "text", "timestamptz", "text", "timestamptz")
"""The types of a result's values (id, holder, state, run_at, error, finished_at); a
PostgreSQL VALUES list needs them spelled out."""
_FINISH_JOBS = """WITH v (id, leased_by, state, run_at, last_error, finished_at) AS (
        VALUES {values})
    UPDATE jobs SET state = v.state, run_at = COALESCE(v.run_at, jobs.run_at),
        last_error = v.last_error, lease_until = NULL, leased_by = NULL, updated_at = $1,
        finished_at = v.finished_at
    FROM v WHERE jobs.id = v.id AND jobs.state = 'executing' AND jobs.leased_by = v.leased_by
    RETURNING jobs.id"""
_FINISH_OUTPUT = """UPDATE job_outputs SET status = $2, error = $3, provider = $4, model = $5,
        parameters = $6, provenance = $7, prompt = $8, system_prompt = $9,
        template_version = COALESCE($10, template_version), raw_response = $11,
        parsed_output = $12, prompt_tokens = prompt_tokens + $13,
        completion_tokens = completion_tokens + $14, latency_ms = $15,
        completed_at = $16, task_type = COALESCE($17, task_type)
    WHERE output_id = $1"""
_OUTPUT_STATUS = {"completed": "completed", "retryable": "pending", "discarded": "failed",
                  "cancelled": "cancelled"}


class JobQueries(ABC):
    """The job methods of ``SqlStore``."""

    @property
    @abstractmethod
    def _jobs_backend(self) -> Backend: ...

    async def enqueue_job(self, job: NewJob) -> EnqueuedJob:
        """Insert ``job`` and its pending output, or return the unfinished job holding its
        unique key (one statement: the database decides)."""
        return (await self.enqueue_jobs([job]))[0]

    async def enqueue_jobs(self, jobs: Sequence[NewJob]) -> list[EnqueuedJob]:
        """``enqueue_job`` for each of ``jobs``, in order, in one transaction (a group
        commit: enqueuers that arrive together share one)."""
        if not jobs:
            return []
        now = utc_now()
        # A user's key repeated within the batch maps to its first job (one statement may
        # not update a row twice); that job is then "existing" for the repeats.
        first_of: dict[tuple[str, str], int] = {}
        firsts: list[NewJob] = []
        slot: list[int] = []
        for job in jobs:
            key = None if job.unique_key is None else (job.user_id, job.unique_key)
            if key is not None and key in first_of:
                slot.append(first_of[key])
                continue
            if key is not None:
                first_of[key] = len(firsts)
            slot.append(len(firsts))
            firsts.append(job)
        async with self._jobs_backend.transaction() as tx:
            done: list[EnqueuedJob] = []
            for start in range(0, len(firsts), _INSERT_ROWS):
                done += await _insert_jobs(tx, firsts[start:start + _INSERT_ROWS], now)
        results: list[EnqueuedJob] = []
        seen: set[int] = set()
        for i in slot:
            results.append(done[i] if i not in seen
                           else EnqueuedJob(job=done[i].job, created=False))
            seen.add(i)
        return results

    async def count_unfinished_jobs(self, user_ids: Sequence[str]) -> dict[str, int]:
        """How many unfinished jobs each of ``user_ids`` has (users with none left out)."""
        users = sorted(set(user_ids))
        if not users:
            return {}
        marks = ", ".join(f"${n}" for n in range(1, len(users) + 1))
        rows = await self._jobs_backend.reader.fetch(
            f"SELECT user_id, count(*) AS n FROM jobs WHERE user_id IN ({marks}) "
            f"AND state IN {_UNFINISHED} GROUP BY user_id", *users)
        return {str(r["user_id"]): int(r["n"]) for r in rows}

    async def held_unique_keys(self, keys: Sequence[tuple[str, str]],
                               ) -> set[tuple[str, str]]:
        """Which of ``keys`` (``(user_id, unique_key)``) an unfinished job holds now: an
        enqueue of one of them would answer that job, not create one."""
        users = sorted({user for user, _ in keys})
        names = sorted({key for _, key in keys})
        if not users:
            return set()
        marks = [f"${n}" for n in range(1, len(users) + len(names) + 1)]
        rows = await self._jobs_backend.reader.fetch(
            f"SELECT user_id, unique_key FROM jobs WHERE user_id IN "
            f"({', '.join(marks[:len(users)])}) AND unique_key IN "
            f"({', '.join(marks[len(users):])}) AND state IN {_UNFINISHED}", *users, *names)
        held = {(str(r["user_id"]), str(r["unique_key"])) for r in rows}
        return held & set(keys)

    async def claim_jobs(self, queue: str, *, limit: int, leased_by: str,
                         lease_until: datetime, now: datetime | None = None,
                         discarded: list[JobRecord] | None = None) -> list[JobRecord]:
        """Lease up to ``limit`` runnable jobs of ``queue`` (by priority, run time, id) to
        ``leased_by`` until ``lease_until``; their outputs become ``processing``. Jobs whose
        lease expired are runnable again; those that had no attempt left are discarded (and
        appended to ``discarded``, when given, once the claim is committed: their ends have
        events too)."""
        backend = self._jobs_backend
        now = now or utc_now()
        # A read first: an idle queue's polls never take the write lock (SQLite has one),
        # and a claim looks for lost last attempts only when there are some (a lease that
        # expires after this read is found by the next claim).
        found = await backend.reader.fetchrow(_DUE_OR_LOST, queue, now)
        if found is None or not (found["due"] or found["lost"]):
            return []
        lost: list[JobRecord] = []
        async with backend.transaction() as tx:
            if found["lost"]:
                lost = await _discard_lost(tx, backend.dialect, queue, now)
            rows = await tx.fetch(_CLAIM[backend.dialect], queue, now, lease_until, leased_by,
                                  limit)
            jobs = sorted((JobRecord.model_validate(r) for r in rows),
                          key=lambda j: (j.priority, j.run_at, j.id))
            if jobs:
                await tx.executemany(_OUTPUT_STARTED,
                                     [(j.output_id, j.attempt, now) for j in jobs])
        if discarded is not None:
            discarded += lost
        return jobs

    async def renew_leases(self, job_ids: Sequence[int], *, leased_by: str,
                           lease_until: datetime) -> set[int]:
        """Extend the leases ``leased_by`` holds on ``job_ids``; the ids it still holds (a
        job missing was cancelled, or its lease expired and another worker took it)."""
        backend = self._jobs_backend
        held: set[int] = set()
        for ids in _id_lists(job_ids):
            async with backend.transaction() as tx:
                await _lock_in_id_order(tx, backend, ids)
                rows = await tx.fetch(
                    f"UPDATE jobs SET lease_until = $2 WHERE id IN ({ids}) "
                    "AND state = 'executing' AND leased_by = $1 RETURNING id",
                    leased_by, lease_until)
            held.update(int(row["id"]) for row in rows)
        return held

    async def finish_jobs(self, results: Sequence[AttemptResult]) -> set[int]:
        """Write how attempts ended, all in one transaction (a group commit); the ids of the
        jobs written — a job whose lease the caller no longer holds is left as it is."""
        if not results:
            return set()
        backend = self._jobs_backend
        now = utc_now()
        ordered = sorted(results, key=lambda r: r.job_id)
        async with backend.transaction() as tx:
            await _lock_in_id_order(tx, backend, _id_list(r.job_id for r in ordered))
            written: set[int] = set()
            for start in range(0, len(ordered), _FINISH_ROWS):
                written |= await _finish_rows(tx, backend.dialect,
                                              ordered[start:start + _FINISH_ROWS], now)
            await tx.executemany(_FINISH_OUTPUT, [_output_values(r, now) for r in ordered
                                                  if r.job_id in written])
        return written

    async def release_jobs(self, job_ids: Sequence[int], *, leased_by: str,
                           ) -> list[JobRecord]:
        """Give back ``leased_by``'s leases on ``job_ids`` (its process is stopping): the
        jobs are due again now, their interrupted attempt counted; the jobs released, as
        they are now (in id order)."""
        backend = self._jobs_backend
        now = utc_now()
        released: list[JobRecord] = []
        for ids in _id_lists(job_ids):
            async with backend.transaction() as tx:
                await _lock_in_id_order(tx, backend, ids)
                rows = await tx.fetch(
                    "UPDATE jobs SET state = 'retryable', run_at = $2, lease_until = NULL, "
                    f"leased_by = NULL, last_error = $3, updated_at = $2 WHERE id IN ({ids}) "
                    "AND state = 'executing' AND leased_by = $1 RETURNING *",
                    leased_by, now, RELEASED)
                await tx.executemany("UPDATE job_outputs SET status = 'pending' "
                                     "WHERE output_id = $1", [(r["output_id"],) for r in rows])
            released += sorted((JobRecord.model_validate(r) for r in rows), key=lambda j: j.id)
        return released

    async def cancel_job(self, job_id: int, *, user_id: str | None = None,
                         ) -> CancelledJob | None:
        """Cancel an unfinished job (of ``user_id``, when given) and its output; None if it
        had finished. Raises ``NotFoundError`` if there is no such job (of that user)."""
        now = utc_now()
        async with self._jobs_backend.transaction() as tx:
            before = await tx.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
            if before is None or (user_id is not None and before["user_id"] != user_id):
                raise NotFoundError(f"no job {job_id}" + (
                    "" if user_id is None else f" of user {user_id!r}"))
            row = await tx.fetchrow(
                f"""UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2,
                        lease_until = NULL
                    WHERE id = $1 AND state IN {_UNFINISHED} RETURNING *""", job_id, now)
            if row is None:
                return None
            await tx.execute("UPDATE job_outputs SET status = 'cancelled', completed_at = $2 "
                             "WHERE output_id = $1", row["output_id"], now)
        return CancelledJob(job=JobRecord.model_validate(row), was=before["state"])

    async def get_job(self, job_id: int) -> JobRecord:
        """A job; raises ``NotFoundError`` (also once it was pruned)."""
        row = await self._jobs_backend.reader.fetchrow("SELECT * FROM jobs WHERE id = $1",
                                                       job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id} (finished jobs are pruned; outputs stay)")
        return JobRecord.model_validate(row)

    async def get_output(self, output_id: str) -> OutputRecord:
        """An output; raises ``NotFoundError`` (also for an id holding NUL, which no output
        has and PostgreSQL could not even compare)."""
        if NUL in output_id:
            raise NotFoundError(f"no output {output_id!r}")
        row = await self._jobs_backend.reader.fetchrow(
            "SELECT * FROM job_outputs WHERE output_id = $1", output_id)
        if row is None:
            raise NotFoundError(f"no output {output_id!r}")
        return OutputRecord.model_validate(row)

    async def list_outputs(self, user_id: str, *, filters: OutputFilter | None = None,
                           cursor: str | None = None, limit: int = 50) -> OutputPage:
        """``user_id``'s outputs, newest first, ``limit`` (1 to 500) a page."""
        limit = max(1, min(int(limit), 500))
        filters = filters or OutputFilter()
        where, args = ["o.user_id = $1"], [user_id]

        def arg(value: object) -> str:
            args.append(value)  # type: ignore[arg-type]
            return f"${len(args)}"

        for column in ("status", "template_name", "model"):
            if (value := getattr(filters, column)) is not None:
                where.append(f"o.{column} = {arg(value)}")
        if filters.rating is not None:
            where.append("EXISTS (SELECT 1 FROM job_feedback f WHERE f.output_id = o.output_id "
                         f"AND f.user_id = o.user_id AND f.rating = {arg(filters.rating)})")
        if cursor is not None:
            created, output_id = _decode_cursor(cursor)
            where.append(f"(o.created_at < {arg(created)} OR (o.created_at = $"
                         f"{len(args)} AND o.output_id < {arg(output_id)}))")
        rows = await self._jobs_backend.reader.fetch(
            f"SELECT o.* FROM job_outputs o WHERE {' AND '.join(where)} "
            f"ORDER BY o.created_at DESC, o.output_id DESC LIMIT {limit + 1}", *args)
        outputs = tuple(OutputRecord.model_validate(r) for r in rows[:limit])
        more = len(rows) > limit
        return OutputPage(outputs=outputs,
                          next_cursor=_encode_cursor(outputs[-1]) if more else None)

    async def set_feedback(self, output_id: str, user_id: str, rating: Rating,
                           reason: str | None = None) -> FeedbackRecord:
        """Create or replace ``user_id``'s rating of ``output_id``."""
        now = utc_now()
        async with self._jobs_backend.transaction() as tx:
            await tx.execute("""INSERT INTO job_feedback (output_id, user_id, rating, reason,
                    updated_at) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (output_id, user_id) DO UPDATE SET rating = excluded.rating,
                    reason = excluded.reason, updated_at = excluded.updated_at""",
                output_id, user_id, rating, reason, now)
        return FeedbackRecord(output_id=output_id, user_id=user_id, rating=rating,
                              reason=reason, updated_at=now)

    async def get_feedback(self, output_id: str, user_id: str) -> FeedbackRecord | None:
        """``user_id``'s rating of ``output_id``, or None."""
        row = await self._jobs_backend.reader.fetchrow(
            "SELECT * FROM job_feedback WHERE output_id = $1 AND user_id = $2",
            output_id, user_id)
        return None if row is None else FeedbackRecord.model_validate(row)

    async def feedback_stats(self, *, template_name: str | None = None,
                             ) -> list[FeedbackStats]:
        """Ups and downs of completed outputs per (template, version, model), of one
        template when given (feedback on other outputs, which ``Jobs`` refuses, is left
        out: they have no answer, and often no model)."""
        sql = """SELECT o.template_name, o.template_version, o.model,
                SUM(CASE WHEN f.rating = 'up' THEN 1 ELSE 0 END) AS up,
                SUM(CASE WHEN f.rating = 'down' THEN 1 ELSE 0 END) AS down
            FROM job_feedback f JOIN job_outputs o ON o.output_id = f.output_id
            WHERE o.status = 'completed'"""
        args: list[object] = []
        if template_name is not None:
            sql += " AND o.template_name = $1"
            args.append(template_name)
        sql += (" GROUP BY o.template_name, o.template_version, o.model"
                " ORDER BY o.template_name, o.template_version, o.model")
        rows = await self._jobs_backend.reader.fetch(sql, *args)
        return [FeedbackStats.model_validate(r) for r in rows]

    async def prune_jobs(self, finished_before: datetime) -> int:
        """Delete jobs that finished before ``finished_before``; how many (outputs stay)."""
        async with self._jobs_backend.transaction() as tx:
            rows = await tx.fetch(f"DELETE FROM jobs WHERE state IN {_FINISHED} "
                                  "AND finished_at < $1 RETURNING id", finished_before)
        return len(rows)

    async def listen_jobs(self, callback: Callable[[str], object], *,
                          on_event: Callable[[str], object] | None = None,
                          on_lost: Callable[[], object] | None = None,
                          check_every_s: float | None = None,
                          ) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback(queue)`` when another process inserts a job (PostgreSQL's
        LISTEN/NOTIFY), ``on_event(payload)`` for each ``notify_job_events`` payload (of
        any process), and ``on_lost()`` if the listening connection is lost (listen
        again) — found by a query every ``check_every_s`` when given, if it stops
        answering; returns the function that stops listening, or None where the backend
        cannot notify (SQLite: workers poll)."""
        channels = {JOBS_CHANNEL: callback}
        if on_event is not None:
            channels[JOB_EVENTS_CHANNEL] = on_event
        return await self._jobs_backend.listen(channels, on_lost=on_lost,
                                               check_every_s=check_every_s)

    async def notify_job_events(self, payloads: Sequence[str]) -> None:
        """Send job event ``payloads`` (each under 8000 bytes) to the processes that
        ``listen_jobs`` with ``on_event``, in order; nothing where the backend cannot
        notify."""
        await self._jobs_backend.notify(JOB_EVENTS_CHANNEL, payloads)


async def _insert_jobs(tx: Executor, jobs: Sequence[NewJob], now: datetime,
                       ) -> list[EnqueuedJob]:
    """Insert ``jobs`` (unique keys distinct) in one statement, and the outputs of those
    created; in order, each with the row that holds its key now."""
    args: list[object] = []
    args_json: list[str] = []  # a job's args fill both its row and its output's request
    for job in jobs:
        args_json.append(dumps(job.args))
        args += [job.queue, job.priority, "scheduled" if job.scheduled else "available",
                 job.max_attempts, job.run_at, job.unique_key, job.user_id, job.output_id,
                 args_json[-1], now]
    rows = await tx.fetch(_insert_jobs_sql(len(jobs)), *args)
    by_output = {row["output_id"]: row for row in rows}
    by_key = {(row["user_id"], row["unique_key"]): row for row in rows
              if row["unique_key"] is not None}
    results: list[EnqueuedJob] = []
    for job in jobs:
        row = by_output.get(job.output_id)
        created = row is not None
        if row is None:
            row = by_key[job.user_id, job.unique_key]
        results.append(EnqueuedJob(job=JobRecord.model_validate(row), created=created))
    await tx.executemany(_INSERT_OUTPUT, [
        (job.output_id, result.job.id, job.user_id, job.template_name, job.template_version,
         dumps(job.variables), job.task_type, request, job.format,
         job.parent_output_id, job.relation, now)
        for job, request, result in zip(jobs, args_json, results, strict=True)
        if result.created])
    return results


@functools.lru_cache(maxsize=_INSERT_ROWS)
def _insert_jobs_sql(rows: int) -> str:
    """The INSERT of ``rows`` jobs (made once for each number of rows)."""
    values = ", ".join(
        "(" + ", ".join(f"${n * _JOB_COLUMNS + c}" for c in range(1, _JOB_COLUMNS + 1)) + ", $"
        + str(n * _JOB_COLUMNS + _JOB_COLUMNS) + ")" for n in range(rows))
    return _INSERT_JOBS.format(values=values)


async def _discard_lost(tx: Executor, dialect: str, queue: str, now: datetime,
                        ) -> list[JobRecord]:
    """Discard ``queue``'s jobs whose lease expired on their last attempt (on PostgreSQL,
    those no other transaction holds), and fail their outputs; the jobs discarded (in id
    order)."""
    lost = await tx.fetch(_DISCARD_LOST[dialect], queue, now, LOST_LAST_ATTEMPT)
    if lost:
        await tx.executemany(_OUTPUT_FAILED,
                             [(r["output_id"], LOST_LAST_ATTEMPT, now) for r in lost])
    return sorted((JobRecord.model_validate(r) for r in lost), key=lambda j: j.id)


def _id_list(job_ids: Iterable[int]) -> str:
    """Job ids as the text of a SQL list, in id order (ints only: nothing else gets in)."""
    return ", ".join(str(job_id) for job_id in sorted({int(job_id) for job_id in job_ids}))


def _id_lists(job_ids: Sequence[int]) -> list[str]:
    """``_id_list`` of ``job_ids`` in lists of at most ``_FINISH_ROWS``."""
    ordered = sorted({int(job_id) for job_id in job_ids})
    return [_id_list(ordered[start:start + _FINISH_ROWS])
            for start in range(0, len(ordered), _FINISH_ROWS)]


async def _lock_in_id_order(tx: Executor, backend: Backend, ids: str) -> None:
    """Row-lock the jobs ``ids`` (an ``_id_list``) in id order, so that writers that may
    wait for several jobs' locks never wait for each other both ways: finish_jobs,
    renew_leases and release_jobs lock through here, and a claim's discard of lost last
    attempts in id order too (``_DISCARD_LOST``). A claim's own picks skip locked rows and
    never wait; cancel_job locks one job. (SQLite's single write lock needs none of this.)"""
    if backend.lock_rows:
        await tx.fetch(f"SELECT id FROM jobs WHERE id IN ({ids}) ORDER BY id"
                       f"{backend.lock_rows}")


async def _finish_rows(tx: Executor, dialect: str, results: Sequence[AttemptResult],
                       now: datetime) -> set[int]:
    """Finish the jobs of ``results`` still executing under their holder's lease, in one
    statement; the ids finished."""
    args: list[object] = [now]
    for r in results:
        args += [r.job_id, r.leased_by, r.state, r.run_at, r.error,
                 None if r.state == "retryable" else now]
    rows = await tx.fetch(_finish_jobs_sql(dialect, len(results)), *args)
    return {int(row["id"]) for row in rows}


@functools.lru_cache(maxsize=256)
def _finish_jobs_sql(dialect: str, rows: int) -> str:
    """The finishing UPDATE of ``rows`` results, for ``dialect`` (made once for each)."""
    types = _FINISH_VALUES if dialect == "postgres" else ("",) * len(_FINISH_VALUES)
    width = len(types)
    values = ", ".join(
        "(" + ", ".join(f"${2 + n * width + c}" + (f"::{kind}" if kind else "")
                        for c, kind in enumerate(types)) + ")" for n in range(rows))
    return _FINISH_JOBS.format(values=values)


def _output_values(result: AttemptResult, now: datetime) -> tuple[object, ...]:
    # The result's text (answer, prompts, error, provenance) holds no NUL: AttemptResult
    # replaced each by U+FFFD when it was made, for PostgreSQL, which cannot store NUL —
    # on both backends, so a model emitting NUL never fails this write.
    return (result.output_id, _OUTPUT_STATUS[result.state], result.error, result.provider,
            result.model, _dumps_or_none(result.parameters),
            _dumps_or_none(result.provenance),
            result.prompt, result.system_prompt, result.template_version,
            result.raw_response, result.parsed_output, result.prompt_tokens,
            result.completion_tokens, result.latency_ms,
            None if result.state == "retryable" else now, result.task_type)


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _encode_cursor(output: OutputRecord) -> str:
    raw = json.dumps([output.created_at.isoformat(), output.output_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, output_id = json.loads(raw)
        if NUL in output_id:
            raise ValueError("no output id holds NUL")
        return datetime.fromisoformat(created), str(output_id)
    except (ValueError, TypeError) as error:
        raise ValueError(f"cursor {cursor[:40]!r} is not one list_outputs gave; "
                         "start again without a cursor") from error


__all__ = ["JOBS_CHANNEL", "JOB_EVENTS_CHANNEL", "LOST_LAST_ATTEMPT", "RELEASED", "JobQueries"]
