"""The rows of the job tables (``jobs``, ``job_outputs``, ``job_feedback``) as they cross the
store boundary; ``beamish.jobs`` builds on them.

A job is a row claimed with a lease; its output is a row kept after the job is pruned. The
job's ``state`` and the output's ``status`` move together::

    job state                               output status
    available / scheduled / retryable   →   pending
    executing                           →   processing
    completed                           →   completed
    discarded                           →   failed
    cancelled                           →   cancelled
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from beamish.store.text import NO_NUL, Replaced, ReplacedObject, Text

JobState = Literal["available", "scheduled", "executing", "retryable", "completed",
                   "discarded", "cancelled"]
"""Where a job is in its life (Oban's states)."""

UNFINISHED_STATES: Final = ("available", "scheduled", "executing", "retryable")
"""States in which a job may still run (its unique key is taken while in one)."""

FINISHED_STATES: Final = ("completed", "discarded", "cancelled")

OutputStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]
"""Where an output is: ``pending → processing → completed | failed | cancelled``."""

OutputFormat = Literal["text", "json", "markdown", "html"]
"""How an answer is parsed and stored."""

Rating = Literal["up", "down"]
Relation = Literal["rerun", "regenerate"]

ErrorReason = Literal["answer_not_json", "answer_off_schema", "template_did_not_render",
                      "no_templates", "last_attempt_lost", "released_at_shutdown",
                      "requested_model_unusable", "prompt_too_long"]
"""Why an attempt or a lease ended a job's attempt, where beamish says why in words of its
own: the fixed code its event and log line carry instead of the message."""


def _json(value: Any) -> Any:
    # Both drivers hand JSON columns back as text.
    return json.loads(value) if isinstance(value, str | bytes) else value


JsonObject = Annotated[dict[str, Any], BeforeValidator(_json)]
OptionalJsonObject = Annotated[dict[str, Any] | None, BeforeValidator(_json)]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class NewJob(_Row):
    """A job to insert, with the output row it fills."""

    queue: str = Field(min_length=1, max_length=64)
    priority: int = Field(default=0, ge=-1000, le=1000)
    max_attempts: int = Field(ge=1, le=100)
    run_at: AwareDatetime
    scheduled: bool = False
    """Whether ``run_at`` is in the future (state ``scheduled``, else ``available``)."""
    unique_key: Annotated[str, Field(min_length=1, max_length=255), NO_NUL] | None = None
    user_id: str = Field(min_length=1, max_length=255)
    output_id: str = Field(min_length=1, max_length=64)
    args: dict[str, Any]
    """What a worker needs to run the job (``beamish.jobs.models.JobRequest`` as JSON)."""
    template_name: str | None = None
    template_version: int | None = None
    variables: dict[str, Any] = {}
    task_type: str = Field(min_length=1, max_length=255)
    format: OutputFormat = "text"
    parent_output_id: str | None = None
    relation: Relation | None = None


class JobRecord(_Row):
    """A row of ``jobs``."""

    id: int
    queue: str
    priority: int
    state: JobState
    attempt: int
    max_attempts: int
    run_at: AwareDatetime
    lease_until: AwareDatetime | None = None
    leased_by: str | None = None
    unique_key: str | None = None
    user_id: str
    output_id: str
    args: JsonObject
    last_error: str | None = None
    inserted_at: AwareDatetime
    attempted_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


class EnqueuedJob(_Row):
    """What ``enqueue_job`` did: the job, and whether this call created it (False: a job
    with the same unique key was pending or running, and this is that one)."""

    job: JobRecord
    created: bool


class OutputRecord(_Row):
    """A row of ``job_outputs``."""

    output_id: str
    job_id: int
    user_id: str
    template_name: str | None = None
    template_version: int | None = None
    variables: JsonObject
    task_type: str
    request: JsonObject
    provider: str | None = None
    model: str | None = None
    parameters: OptionalJsonObject = None
    provenance: OptionalJsonObject = None
    prompt: str | None = None
    system_prompt: str | None = None
    raw_response: str | None = None
    parsed_output: str | None = None
    format: OutputFormat
    status: OutputStatus
    error: str | None = None
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int | None = None
    parent_output_id: str | None = None
    relation: Relation | None = None
    created_at: AwareDatetime
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None


class AttemptResult(_Row):
    """How one attempt of a job ended, as its worker writes it (``finish_jobs``).

    ``state`` is the job's next state: ``completed``, ``retryable`` (with ``run_at``),
    ``discarded`` (a permanent failure: the output fails with ``error``) or ``cancelled``.

    Its text is what a model answered, a template rendered, or an error quoting either: a
    NUL character in it is replaced by U+FFFD (``beamish.store.text``), since PostgreSQL
    cannot store NUL and the answer stays readable — so a model that emits one never fails
    the attempt's write (which would burn the job's attempts, each an LLM call).
    """

    job_id: int
    output_id: str
    leased_by: str
    state: Literal["completed", "retryable", "discarded", "cancelled"]
    run_at: AwareDatetime | None = None
    error: Replaced | None = None
    provider: str | None = None
    model: Replaced | None = None
    parameters: ReplacedObject | None = None
    provenance: ReplacedObject | None = None
    prompt: Replaced | None = None
    system_prompt: Replaced | None = None
    template_version: int | None = None
    task_type: str | None = Field(default=None, min_length=1, max_length=255)
    """The task type the attempt served, once known (None leaves the output's as it is)."""
    raw_response: Replaced | None = None
    parsed_output: Replaced | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int | None = None
    error_kind: str | None = None
    """The class name of the exception the attempt failed with (for the job's event and
    log line, which carry no message; not stored)."""
    error_reason: ErrorReason | None = None
    """The fixed reason of an error beamish gave in its own words (not stored)."""


class OutputFilter(_Row):
    """Which of a user's outputs ``list_outputs`` returns (every given field must match)."""

    status: OutputStatus | None = None
    template_name: Text | None = None
    model: Text | None = None
    rating: Rating | None = None
    """Outputs the user rated so."""


class OutputPage(_Row):
    """A page of outputs, newest first; ``next_cursor`` fetches the next (None: no more)."""

    outputs: tuple[OutputRecord, ...]
    next_cursor: str | None = None


class FeedbackRecord(_Row):
    """A user's rating of an output (one per user per output; a second replaces it)."""

    output_id: str
    user_id: str
    rating: Rating
    reason: str | None = None
    updated_at: datetime


class FeedbackStats(_Row):
    """Ratings of completed outputs per template version and model."""

    template_name: str | None
    template_version: int | None
    model: str | None
    up: int
    down: int


class CancelledJob(_Row):
    """A job ``cancel_job`` cancelled, and the state it was in (``executing``: a worker is
    running it and is told to stop)."""

    job: JobRecord
    was: JobState


__all__ = [
    "FINISHED_STATES", "UNFINISHED_STATES", "AttemptResult", "CancelledJob", "EnqueuedJob",
    "ErrorReason",
    "FeedbackRecord", "FeedbackStats", "JobRecord", "JobState", "NewJob", "OutputFilter",
    "OutputFormat", "OutputPage", "OutputRecord", "OutputStatus", "Rating", "Relation",
]
