"""The job state machine's decisions, without a loop: retry times, error classes, policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from beamish.jobs import (
    JobRequest,
    JobsSettings,
    PermanentAttemptError,
    QueueSettings,
    RetryableAttemptError,
)
from beamish.jobs.schedule import (
    OUTPUT_STATUS,
    after_failure,
    classify,
    estimate_completion,
    retry_policy,
)
from beamish.llm.errors import (
    BadRequestError,
    NoUsableProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    UnauthorizedError,
)
from beamish.sessions.errors import RuntimeNotRunningError

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _request(**fields: object) -> JobRequest:
    return JobRequest.model_validate({"user_id": "ada", "prompt": "x", **fields})


def test_the_default_policy_is_five_retries_from_five_seconds_capped_at_300() -> None:
    """Defaults: 6 attempts; ceilings 5, 10, 20, 40, 80 s, and never above 300 s."""
    policy = retry_policy(JobsSettings(), _request())
    assert policy.max_attempts == 6
    assert [policy.backoff.ceiling(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300,
                                                                300]


def test_the_retry_schedule_draws_full_jitter_below_each_ceiling() -> None:
    """With a seeded source, each retry waits uniform-random in [0, ceiling): the exact
    times follow from the seed, and the last attempt's failure discards the job."""
    policy = retry_policy(JobsSettings(), _request())
    draws = random.Random(27)
    expected = random.Random(27)
    error = RetryableAttemptError("timeout")
    for attempt in range(1, 6):
        failure = after_failure(error, attempt=attempt, policy=policy, now=NOW,
                                random=draws.random)
        ceiling = min(300.0, 5.0 * 2 ** (attempt - 1))
        assert failure.state == "retryable"
        assert failure.run_at == NOW + timedelta(seconds=expected.random() * ceiling)
    last = after_failure(error, attempt=6, policy=policy, now=NOW, random=draws.random)
    assert (last.state, last.run_at) == ("discarded", None)


def test_a_permanent_error_discards_on_the_first_attempt() -> None:
    """A permanent failure is not retried, however many attempts are left."""
    failure = after_failure(PermanentAttemptError("bad request"), attempt=1,
                            policy=retry_policy(JobsSettings(), _request()), now=NOW)
    assert failure.state == "discarded"


def test_the_job_then_the_queue_then_the_defaults_set_the_policy() -> None:
    """A job's own retry settings win over its queue's, which win over [jobs]'s."""
    settings = JobsSettings(queues={"default": QueueSettings(max_retries=1,
                                                             backoff_base_s=2.0),
                                    "low": QueueSettings()})
    assert retry_policy(settings, _request()).max_attempts == 2
    assert retry_policy(settings, _request()).backoff.ceiling(1) == 2.0
    assert retry_policy(settings, _request(max_retries=0)).max_attempts == 1
    assert retry_policy(settings, _request(queue="low")).max_attempts == 6
    assert retry_policy(settings, _request(backoff_cap_s=3.0)).backoff.ceiling(5) == 3.0


@pytest.mark.parametrize(("error", "retryable"), [
    (ProviderTimeoutError("no answer", provider="p", model="m"), True),
    (ProviderUnavailableError("503", provider="p", model="m"), True),
    (RateLimitedError("429", provider="p", model="m"), True),
    (BadRequestError("400", provider="p", model="m"), False),
    (UnauthorizedError("401", provider="p", model="m"), False),
    (NoUsableProviderError("ada", "chat", ()), False),
    (RuntimeNotRunningError("restarting"), True),
    (RuntimeError("a bug"), True),
])
def test_only_errors_another_attempt_may_not_meet_retry(error: Exception,
                                                        retryable: bool) -> None:
    """Timeouts, 5xx, rate limits and restarts retry; refusals and resolution do not."""
    classified = classify(error)
    assert classified.retryable is retryable
    assert classified.__cause__ is error


def test_each_job_state_has_its_output_status() -> None:
    """Pending, processing and the three ends of an output follow the job's state."""
    assert {state: OUTPUT_STATUS[state] for state in ("available", "executing", "completed",
                                                      "discarded", "cancelled")} == {
        "available": "pending", "executing": "processing", "completed": "completed",
        "discarded": "failed", "cancelled": "cancelled"}


def test_the_estimate_counts_the_backlog_in_rounds_of_the_queue_s_workers() -> None:
    """A job due now behind 25 others on 10 workers at 2 s a job is done in 3 rounds."""
    assert estimate_completion(now=NOW, run_at=NOW, backlog=25, concurrency=10,
                               mean_s=2.0) == NOW + timedelta(seconds=6)
    later = NOW + timedelta(hours=1)
    assert estimate_completion(now=NOW, run_at=later, backlog=0, concurrency=10,
                               mean_s=2.0) == later + timedelta(seconds=2)
