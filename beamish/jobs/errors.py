"""Every exception ``beamish.jobs`` raises (store and LLM errors of the caller's own making
pass through unchanged)::

    JobError
    ├── JobNotFoundError          no such job or output (or not the caller's: see below)
    ├── OutputForbiddenError      the output (or job) belongs to another user
    ├── InvalidJobError           the job cannot be run as given (bad queue, template
    │   │                         without templates, prompt too large, bad schema)
    │   └── MissingPromptError    neither template nor prompt, and the task type's
    │                             configuration names no template either
    ├── OutputNotCompletedError   feedback on an output that has not completed
    ├── JobLimitError             the user has max_unfinished_per_user jobs pending or running
    ├── WaitLimitError            the user (or the process) has as many waits for outputs
    │                             as allowed (max_waits_per_user, max_waits)
    ├── JobsNotRunningError       the application (and so its job tree) is not running
    └── AttemptError              one attempt of a job failed (inside workers only)
        ├── RetryableAttemptError a failure another attempt may not meet (timeouts, 5xx,
        │                         rate limits, an answer that is not the JSON asked for)
        └── PermanentAttemptError a failure every attempt would meet (bad request, bad key,
                                  a template that does not render): the output fails now

An ``AttemptError`` carries, beside its message (which its user sees, and which can quote
what the user sent), what the job's event and log line carry instead: ``kind``, the class
name of the exception the attempt met (its own, where beamish raised it), and ``reason``, a
fixed code where beamish's own words say why (``ErrorReason``).

Users act only on their own outputs: asking for another user's is ``OutputForbiddenError``
(HTTP 403); an id that does not exist is ``JobNotFoundError`` (404).
"""

from __future__ import annotations

from beamish.store.job_models import ErrorReason


class JobError(Exception):
    """Base class of every error raised by ``beamish.jobs``."""


class JobNotFoundError(JobError, LookupError):
    """No job or output has this id."""


class OutputForbiddenError(JobError, PermissionError):
    """A user asked for an output (or job) of another user."""

    def __init__(self, what: str, user_id: str) -> None:
        super().__init__(f"{what} does not belong to user {user_id!r}")
        self.user_id = user_id


class InvalidJobError(JobError, ValueError):
    """The job cannot be run as given; the message says what to change.

    ``param`` names the argument at fault where one is (``variables``, ``overrides``, ...):
    a value that argument may not take, rather than a limit of this server (HTTP answers
    the first a 422 naming it, the second a 400)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class MissingPromptError(InvalidJobError):
    """A job named neither a template nor a prompt, and its task type resolves to no
    configured template for its user; the message names the task type and the user."""

    def __init__(self, task_type: str, user_id: str) -> None:
        super().__init__(f"the job names no template and no prompt, and the configuration of "
                         f"task type {task_type!r} names no template for user {user_id!r}; "
                         "give template (with variables) or prompt, or have a global config "
                         "of the task type name a template")
        self.task_type = task_type
        self.user_id = user_id


class OutputNotCompletedError(JobError):
    """Feedback was given on an output that has not completed (pending, processing, failed
    or cancelled): there is no answer to rate."""

    def __init__(self, output_id: str, status: str) -> None:
        super().__init__(f"output {output_id!r} is {status}, not completed: there is no "
                         "answer to rate yet; rate it once it has completed")
        self.output_id = output_id
        self.status = status


class JobLimitError(JobError):
    """The user already has ``[jobs] max_unfinished_per_user`` jobs pending or running."""

    def __init__(self, user_id: str, limit: int) -> None:
        super().__init__(f"user {user_id!r} has {limit} jobs pending or running, the most "
                         "allowed ([jobs] max_unfinished_per_user); enqueue more once some "
                         "have finished")
        self.user_id = user_id
        self.limit = limit


class WaitLimitError(JobError):
    """The user already waits for ``[jobs] max_waits_per_user`` outputs at once (or the
    process for ``max_waits``): ``Jobs.wait`` and the HTTP long poll."""

    def __init__(self, limit: int, *, user_id: str | None = None) -> None:
        if user_id is None:
            said = (f"this process already waits for {limit} outputs, the most allowed "
                    "([jobs] max_waits); read the output without waiting, or wait again "
                    "shortly")
        else:
            said = (f"user {user_id!r} already waits for {limit} outputs at once, the most "
                    "allowed ([jobs] max_waits_per_user); wait again once one of those "
                    "waits has ended")
        super().__init__(said)
        self.user_id = user_id
        self.limit = limit


class JobsNotRunningError(JobError):
    """The job tree is not running: use ``app.jobs`` inside ``async with Application()``."""


class AttemptError(JobError):
    """One attempt failed; ``retryable`` says whether another may succeed.

    Args:
        message: what its user is told.
        kind: the class name of the exception the attempt met (default: this error's).
        reason: a fixed code for an error given in beamish's own words.
    """

    retryable: bool = True

    def __init__(self, message: str, *, kind: str | None = None,
                 reason: ErrorReason | None = None) -> None:
        super().__init__(message)
        self.kind = kind or type(self).__name__
        self.reason = reason


class RetryableAttemptError(AttemptError):
    """Another attempt may succeed (the job is retried after its backoff)."""


class PermanentAttemptError(AttemptError):
    """No attempt will succeed: the job is discarded and its output failed."""

    retryable = False


__all__ = ["AttemptError", "InvalidJobError", "JobError", "JobLimitError", "JobNotFoundError",
           "JobsNotRunningError", "MissingPromptError", "OutputForbiddenError",
           "OutputNotCompletedError", "PermanentAttemptError", "RetryableAttemptError",
           "WaitLimitError"]
