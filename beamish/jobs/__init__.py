"""Durable LLM jobs: a queue in the store, run by supervised workers, leaving stored outputs.

::

    async with beamish.Application() as app:
        handle = await app.jobs.enqueue(prompt="Summarise: ...", user_id="ada",
                                        format="markdown", queue="high")
        app.jobs.subscribe(print)                       # JobEvent on every state change
        output = await app.jobs.get_output(handle.output_id, user_id="ada")

How it is built, one concept a module:

* ``beamish.store`` (``_jobs``, ``job_models``) — the tables and their SQL: enqueue is one
  ``INSERT … ON CONFLICT`` (unique keys held by the database), claims are leases
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), a job whose lease expired runs again.
* :mod:`.schedule` — the state machine's decisions without I/O: retries with exponential
  backoff and full jitter, which errors retry, estimated completion.
* :mod:`.formats` — answers to stored outputs (JSON checked, HTML sanitized).
* :mod:`.execution` — one attempt: render, resolve, call, usage durable, parse.
* :mod:`.actors` — the supervised tree: per-queue producers claiming in batches for their
  workers, the finisher's group commits, lease renewal, pruning, NOTIFY wake-ups.
* :mod:`.event_log` — the one log line of each job event: ids and numbers, never content.
* :mod:`.relay` — job events to and from the other processes sharing a PostgreSQL queue.
* :mod:`.ordering` — the order of one job's events, where other processes' events cross.
* :mod:`.waiters` — the callers of ``Jobs.wait``, woken by one lookup per job event.
* :mod:`.api` — ``Jobs``, the API; :mod:`.submission` — a job as HTTP and the user
  channel take it; :mod:`.models`, :mod:`.settings`, :mod:`.errors`.

Execution is at least once, its effects exactly once: each attempt records usage under its
own request id, and an output is completed once, by the holder of the job's lease.
"""

from beamish.jobs.actors import jobs_spec
from beamish.jobs.api import Jobs
from beamish.jobs.context import JobsContext
from beamish.jobs.errors import (
    AttemptError,
    InvalidJobError,
    JobError,
    JobLimitError,
    JobNotFoundError,
    JobsNotRunningError,
    MissingPromptError,
    OutputForbiddenError,
    OutputNotCompletedError,
    PermanentAttemptError,
    RetryableAttemptError,
    WaitLimitError,
)
from beamish.jobs.formats import FormatError
from beamish.jobs.models import JobEvent, JobHandle, JobRequest, RenderedPrompt, Renderer
from beamish.jobs.settings import JobsSettings, QueueSettings
from beamish.jobs.submission import JobSubmission

__all__ = [
    "Jobs", "JobsContext", "jobs_spec",
    "JobEvent", "JobHandle", "JobRequest", "JobSubmission", "RenderedPrompt", "Renderer",
    "JobsSettings", "QueueSettings",
    "AttemptError", "FormatError", "InvalidJobError", "JobError", "JobLimitError",
    "JobNotFoundError",
    "JobsNotRunningError", "MissingPromptError", "OutputForbiddenError",
    "OutputNotCompletedError", "PermanentAttemptError", "RetryableAttemptError",
    "WaitLimitError",
]
