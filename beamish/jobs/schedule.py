"""The job state machine's decisions, without I/O: what an attempt's end makes of a job,
when a retry runs, which errors retry, and when a job should be done.

Rules, in one place:

* A job has ``max_retries + 1`` attempts. An attempt that fails with a retryable error
  while attempts are left makes the job ``retryable`` at ``now + delay``, the delay drawn by
  ``ExponentialBackoff`` with full jitter (uniform in [0, min(cap, base * 2 ** (n - 1))]
  before retry *n*); otherwise the job is ``discarded`` and its output ``failed``.
* Retryable: provider timeouts, 5xx, refused connections, rate limits (``beamish.llm``
  errors whose ``code`` is ``provider_unavailable``), a JSON answer that does not parse or
  fit the schema, the config resolver restarting, and unexpected errors (a bug may be a
  race). Permanent: the provider refused the request (bad request, bad key), nothing could
  be resolved, the template does not render.
* The policy is the job's own where it sets one, else its queue's, else ``[jobs]``'s.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from beamish.jobs.errors import AttemptError, PermanentAttemptError, RetryableAttemptError
from beamish.jobs.models import JobRequest
from beamish.jobs.settings import JobsSettings, QueueSettings
from beamish.llm.errors import PROVIDER_UNAVAILABLE, LLMError, ResolutionError
from beamish.runtime.backoff import ExponentialBackoff, Jitter
from beamish.store.job_models import JobState, OutputStatus

OUTPUT_STATUS: dict[JobState, OutputStatus] = {
    "available": "pending", "scheduled": "pending", "retryable": "pending",
    "executing": "processing", "completed": "completed", "discarded": "failed",
    "cancelled": "cancelled",
}
"""The output status that goes with each job state."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a job has, and how long it waits before each retry."""

    max_attempts: int
    backoff: ExponentialBackoff


def retry_policy(settings: JobsSettings, request: JobRequest) -> RetryPolicy:
    """The job's policy: its own settings, else its queue's, else the defaults."""
    queue = settings.queues.get(request.queue, QueueSettings())
    retries = _first(request.max_retries, queue.max_retries, settings.max_retries)
    base = _first(request.backoff_base_s, queue.backoff_base_s, settings.backoff_base_s)
    cap = _first(request.backoff_cap_s, queue.backoff_cap_s, settings.backoff_cap_s)
    return RetryPolicy(max_attempts=int(retries) + 1,
                       backoff=ExponentialBackoff(base=base, cap=cap, jitter=Jitter.FULL))


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt makes of its job."""

    state: Literal["retryable", "discarded"]
    run_at: datetime | None
    """When the retry runs (``retryable`` only)."""


def after_failure(error: AttemptError, *, attempt: int, policy: RetryPolicy, now: datetime,
                  random: Callable[[], float] = _random.random) -> Failure:
    """The job's next state after attempt number ``attempt`` (1-based) failed with ``error``.

    ``random`` draws the jitter (uniform in [0, 1)); tests pass a seeded one.
    """
    if not error.retryable or attempt >= policy.max_attempts:
        return Failure("discarded", None)
    delay = policy.backoff.delay(attempt, random)
    return Failure("retryable", now + timedelta(seconds=delay))


def classify(error: Exception) -> AttemptError:
    """The attempt error for what an attempt raised (the cause is kept, its class name is
    the error's ``kind``)."""
    if isinstance(error, AttemptError):
        return error
    kind: type[AttemptError] = RetryableAttemptError  # restarts, unexpected errors
    if isinstance(error, ResolutionError) or (
            isinstance(error, LLMError) and error.code != PROVIDER_UNAVAILABLE):
        kind = PermanentAttemptError
    # Outputs are shown to their users: an LLM error says what happened in its public
    # words, never the upstream's own text (which may echo what it was sent).
    text = error.public_message if isinstance(error, LLMError) else str(error)
    name = type(error).__name__
    described = kind(f"{name}: {text}", kind=name)
    described.__cause__ = error
    return described


def estimate_completion(*, now: datetime, run_at: datetime, backlog: int, concurrency: int,
                        mean_s: float) -> datetime:
    """When a job enqueued now should be done: once it is due, after the ``backlog`` of its
    queue in this process has gone through ``concurrency`` workers at ``mean_s`` a job."""
    start = max(now, run_at)
    rounds = backlog // max(concurrency, 1) + 1
    return start + timedelta(seconds=rounds * mean_s)


__all__ = ["OUTPUT_STATUS", "Failure", "RetryPolicy", "after_failure", "classify",
           "estimate_completion", "retry_policy"]
