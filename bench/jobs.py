"""Jobs benchmark: durable LLM jobs end to end, enqueue latency, and rescue after SIGKILL.

Figures:

* ``jobs_per_s_sqlite`` / ``jobs_per_s_postgres`` — ``JOBS`` jobs from the first enqueue to
  the last completed output, on the echo provider, one queue of ``WORKERS`` workers
  (goals: >= 2,000 and >= 1,000). ``ENQUEUERS`` callers enqueue at once. Each job is an
  insert, a claim, an LLM call whose usage is made durable, and a completion.
  ``store_enqueue_per_s_*``, the store's own job insert (``Store.enqueue_jobs`` in batches
  of ``INSERT_BATCH``, nothing run) measured in the same run, is the baseline: the
  database's cost of the first of those writes alone.
* ``enqueue_ms_p50`` — one ``app.jobs.enqueue`` awaited at a time (SQLite; goal <= 2 ms),
  with ``enqueue_ms_p99`` beside it.
* ``rescue_s`` — a worker *process* holding jobs is killed with SIGKILL; seconds from the
  kill until the first of its jobs starts again in another process that starts at once
  (goal: <= lease + 1 s; ``lease_s`` is reported beside it). The new process starting up
  is inside the figure.
* ``jobs_lost`` / ``usage_double_counted`` — after that run, every one of the
  ``RESCUE_JOBS`` jobs is completed exactly once (lost: not completed), and no upstream call
  has more than one usage row (goals: 0 and 0). Counted per call, not in total: calls the
  killed process had in flight reach the upstream but record nothing, so a total (rows
  against calls, or against attempts) would hide as many double counts as there were such
  calls. Each call is named in the row it records: job ``N`` has the task type ``work-N``
  (``bench/_jobs_child.py``), and the fake upstream answers the k-th call it gets for a job
  with k words, so the row's ``completion_tokens`` is k. ``usage_double_counted`` is the ok
  rows beyond one per (task type, k), plus any row whose k no call of its job had.
  ``usage_unrecorded_calls`` reports the calls with no row: those in flight at the kill.
  Rows that are not ``ok`` carry no k; they are reported as ``usage_rows_not_ok`` (none
  are expected: the upstream never fails and nothing is cancelled).

SQLite is a temporary file; PostgreSQL is ``BEAMISH_BENCH_PG_URL`` or a private server
started with ``fsync`` on (``tests/store/_pg.py``), and its figure is left out, saying why,
when there is none. The SIGKILL run uses a fake OpenAI-compatible upstream
(``tests/llm/providers/_fake_llm_server.py``) and the child ``bench/_jobs_child.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from beamish.application import Application
from beamish.jobs import JobEvent, JobsSettings, QueueSettings
from beamish.settings import Settings
from beamish.store import open_store
from beamish.store.job_models import NewJob, OutputFilter
from bench._harness import Report, cpu_times, now, percentile
from tests.jobs._app import settings as upstream_settings
from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.store import _pg

JOBS = 20_000
WORKERS = 50
ENQUEUERS = 50
INSERT_BATCH = 100
ENQUEUE_SAMPLES = 2_000
RESCUE_JOBS = 2_000
RESCUE_WORKERS = 20
LEASE_S = 2.0
USER = "bench"
ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 600.0


def _settings(url: str, jobs: int, **options: Any) -> Settings:
    return Settings(database_url=url, jobs=JobsSettings(
        queues={"default": QueueSettings(concurrency=WORKERS)},
        max_unfinished_per_user=jobs + 1, **options))


class _Completions:
    """Counts ``completed`` events; ``done`` is set once ``target`` were seen."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    def __call__(self, event: JobEvent) -> None:
        if event.event == "completed":
            self.count += 1
            if self.count >= self.target:
                self.done.set()


async def _throughput(url: str, jobs: int) -> float:
    """Jobs per second from the first enqueue to the last completion."""
    async with Application(_settings(url, jobs)) as app:
        completions = _Completions(jobs)
        app.jobs.subscribe(completions)
        per_caller = jobs // ENQUEUERS

        async def enqueue(caller: int) -> None:
            for index in range(per_caller):
                await app.jobs.enqueue(prompt=f"job {caller} {index}", user_id=USER)

        started = now()
        async with asyncio.TaskGroup() as group:
            for caller in range(ENQUEUERS):
                group.create_task(enqueue(caller))
        await asyncio.wait_for(completions.done.wait(), WAIT_S)
        return per_caller * ENQUEUERS / (now() - started)


async def _store_inserts(url: str, jobs: int) -> float:
    """The store's own job inserts per second: ``enqueue_jobs`` in batches, nothing run."""
    async with open_store(url) as store:
        batches = [[NewJob(queue="default", max_attempts=6, run_at=datetime.now(UTC),
                           user_id=USER, output_id=uuid.uuid4().hex,
                           args={"user_id": USER, "prompt": f"job {b} {i}"},
                           task_type="chat") for i in range(INSERT_BATCH)]
                   for b in range(jobs // INSERT_BATCH)]
        started = now()
        for batch in batches:
            await store.enqueue_jobs(batch)
        return len(batches) * INSERT_BATCH / (now() - started)


async def _enqueue_latency(url: str, samples: int) -> list[float]:
    """Milliseconds of each of ``samples`` enqueues awaited one at a time (no workers)."""
    async with Application(_settings(url, samples, enabled=False)) as app:
        times = []
        for index in range(samples):
            started = now()
            await app.jobs.enqueue(prompt=f"one {index}", user_id=USER)
            times.append((now() - started) * 1000)
        return times


# -- the SIGKILL run ------------------------------------------------------------------------


def _start_child(url: str, upstream: FakeLLMServer) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench._jobs_child", url, upstream.openai_url,
               str(LEASE_S), str(RESCUE_JOBS), str(RESCUE_WORKERS)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "enqueued":
        child.kill()
        raise RuntimeError(f"the worker child did not start: {line!r}")
    return child


class _CallNumbers:
    """The fake upstream's reply: the k-th call for job N's prompt (``work N``) is answered
    with k words, so the usage row that call records says k in its ``completion_tokens``.

    Called on the upstream's one thread; ``calls`` counts the calls per job.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, body: Mapping[str, Any]) -> str:
        task = str(body["messages"][-1]["content"]).replace(" ", "-")  # work N -> work-N
        self.calls[task] += 1
        return " ".join(["ok"] * self.calls[task])


def _rows_per_call(database: Path) -> tuple[Counter[tuple[str, int]], int]:
    """The bench user's ok usage rows per (task type, k), and the number of other rows."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        ok = Counter({(task, k): rows for task, k, rows in db.execute(
            "SELECT task_type, completion_tokens, count(*) FROM usage_events "
            "WHERE user_id = ? AND status = 'ok' GROUP BY task_type, completion_tokens",
            (USER,))})
        [(other,)] = db.execute("SELECT count(*) FROM usage_events WHERE user_id = ? "
                                "AND status <> 'ok'", (USER,))
    return ok, int(other)


def _usage_per_call(calls: Counter[str], rows: Counter[tuple[str, int]],
                    ) -> tuple[int, int]:
    """(rows beyond one per answered call, answered calls with no row)."""
    answered = {(task, k) for task, made in calls.items() for k in range(1, made + 1)}
    double = sum(n - 1 if key in answered else n for key, n in rows.items())
    return double, len(answered - rows.keys())


async def _rescue(database: Path) -> dict[str, Any]:
    """Kill a worker process mid-run; rescue its jobs in a new one; count what was lost."""
    url = f"sqlite:///{database}"
    with FakeLLMServer() as upstream:
        upstream.reply = numbers = _CallNumbers()
        child = _start_child(url, upstream)
        try:
            reached = await asyncio.to_thread(upstream.wait_for_requests, RESCUE_JOBS // 4,
                                              WAIT_S)
            assert reached, "the child's workers did not reach the upstream"
        finally:
            child.kill()  # SIGKILL: no lease given back, no usage flushed
            killed = now()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
        async with open_store(url) as store:
            before = await _completed(store)
        rescued = asyncio.get_running_loop().create_future()

        def on(event: JobEvent) -> None:
            if event.event == "started" and event.attempt >= 2 and not rescued.done():
                rescued.set_result(now())

        options = upstream_settings(url, upstream, lease_s=LEASE_S, poll_interval_s=1.0,
                                    max_unfinished_per_user=RESCUE_JOBS + 1,
                                    queues={"default": {"concurrency": RESCUE_WORKERS}})
        async with Application(options) as app:
            app.jobs.subscribe(on)
            completions = _Completions(RESCUE_JOBS - before)
            app.jobs.subscribe(completions)
            again = await asyncio.wait_for(rescued, WAIT_S)
            with contextlib.suppress(TimeoutError):  # what did not complete counts as lost
                await asyncio.wait_for(completions.done.wait(), WAIT_S)
            completed = await _completed(app.store)
        calls = len(upstream.requests)
    rows, not_ok = _rows_per_call(database)  # once the application has flushed its usage
    double, unrecorded = _usage_per_call(numbers.calls, rows)
    return {"rescue_s": again - killed, "completed_before_kill": before,
            "completed": completed, "jobs_lost": RESCUE_JOBS - completed,
            "usage_rows": sum(rows.values()) + not_ok, "upstream_calls": calls,
            "usage_double_counted": double, "usage_unrecorded_calls": unrecorded,
            "usage_rows_not_ok": not_ok}


async def _completed(store: Any) -> int:
    count, cursor = 0, None
    while True:
        page = await store.list_outputs(USER, filters=OutputFilter(status="completed"),
                                        cursor=cursor, limit=500)
        count += len(page.outputs)
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor


# -- targets -----------------------------------------------------------------------------


@contextmanager
def _sqlite_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="beamish-bench-jobs-") as folder:
        yield Path(folder)


@contextmanager
def _postgres(raw: dict[str, Any]) -> Iterator[str | None]:
    external = os.environ.get("BEAMISH_BENCH_PG_URL")
    if external:
        yield external
        return
    bindir = _pg.find_bindir()
    if bindir is None:
        raw["postgres"] = "skipped: no PostgreSQL found (set BEAMISH_BENCH_PG_URL)"
        yield None
        return
    with _pg.local_server(bindir, durable=True) as url:
        yield url


async def _fresh_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _pg.with_database(server_url, name)


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _postgres_figures(report: Report, server_url: str, jobs: int) -> None:
    names = [f"beamish_bench_jobs_{os.getpid()}_{n}" for n in range(2)]
    try:
        inserts = asyncio.run(_store_inserts(
            asyncio.run(_fresh_database(server_url, names[0])), jobs))
        per_s = asyncio.run(_throughput(asyncio.run(_fresh_database(server_url, names[1])),
                                        jobs))
    finally:
        for name in names:
            with contextlib.suppress(asyncpg.PostgresError):  # never created: failed before
                asyncio.run(_drop_database(server_url, name))
    report.add("jobs_per_s_postgres", per_s, "jobs/s", ">= 1000")
    report.add("store_enqueue_per_s_postgres", inserts, "jobs/s")


def _load() -> dict[str, Any]:
    """The machine's load averages and CPU count (the benchmark machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": one, "loadavg_5m": five, "loadavg_15m": fifteen,
            "cpus": os.cpu_count()}


def run(quick: bool) -> Report:
    """Every figure (``quick``: a tenth of the jobs, for a smoke run)."""
    report = Report("jobs")
    jobs = JOBS // 10 if quick else JOBS
    samples = ENQUEUE_SAMPLES // 10 if quick else ENQUEUE_SAMPLES
    report.raw["load_before"] = _load()
    report.raw["cpu_before"] = cpu_times()
    report.raw.update(jobs=jobs, workers=WORKERS, enqueuers=ENQUEUERS,
                      rescue_jobs=RESCUE_JOBS, rescue_workers=RESCUE_WORKERS)
    with _sqlite_folder() as folder:
        inserts = asyncio.run(_store_inserts(f"sqlite:///{folder / 'inserts.db'}", jobs))
        per_s = asyncio.run(_throughput(f"sqlite:///{folder / 'run.db'}", jobs))
        report.add("jobs_per_s_sqlite", per_s, "jobs/s", ">= 2000")
        report.add("store_enqueue_per_s_sqlite", inserts, "jobs/s")
        with _postgres(report.raw) as server_url:
            if server_url is not None:
                _postgres_figures(report, server_url, jobs)
        latency = asyncio.run(_enqueue_latency(f"sqlite:///{folder / 'one.db'}", samples))
        report.add("enqueue_ms_p50", percentile(latency, 50), "ms", "<= 2")
        report.add("enqueue_ms_p99", percentile(latency, 99), "ms")
        rescue = asyncio.run(_rescue(folder / "rescue.db"))
    report.add("rescue_s", rescue["rescue_s"], "s", f"<= {LEASE_S + 1:g}")
    report.add("lease_s", LEASE_S, "s")
    report.add("jobs_lost", rescue["jobs_lost"], "jobs", "<= 0")
    report.add("usage_double_counted", rescue["usage_double_counted"], "rows", "<= 0")
    report.add("usage_unrecorded_calls", rescue["usage_unrecorded_calls"], "calls")
    report.raw["rescue"] = rescue
    report.raw["load_after"] = _load()
    return report
