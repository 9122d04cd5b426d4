"""What the job API takes and gives: ``JobRequest`` (a job's arguments, stored as its
``args``), ``JobHandle`` (what ``enqueue`` answers), ``JobEvent`` (a state change, for
listeners) and the ``Renderer`` protocol through which template jobs get their prompt."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from beamish.llm.hierarchy import ConfigRequest
from beamish.store.job_models import ErrorReason, JobState, OutputFormat, OutputStatus, Relation
from beamish.store.models import Name
from beamish.store.text import NO_NUL, Text, TextObject

MAX_BACKOFF_S = 86_400.0
"""The longest backoff base or cap a job may set (a day)."""

BackoffSeconds = Annotated[float, Field(gt=0, le=MAX_BACKOFF_S)]
"""A job's own backoff base or cap: above 0 (a job may not ask for retries without a
pause — ``[jobs]`` settings may), at most a day."""
TemplateLabel = Annotated[str, Field(min_length=1, max_length=64), NO_NUL]
_Short = Annotated[str, Field(min_length=1, max_length=64), NO_NUL]  # a queue, a source
TemplateVersion = Annotated[int, Field(ge=1, le=2**31 - 1)]

EventKind = Literal["queued", "started", "retried", "completed", "failed", "cancelled",
                    "feedback"]


def check_choices(*, template: str | None, label: str | None, version: int | None,
                  backoff_base_s: float | None, backoff_cap_s: float | None,
                  label_field: str = "template_label",
                  version_field: str = "template_version") -> None:
    """The rules a job's template version and backoff follow however it is submitted
    (``JobRequest``, ``JobSubmission``, ``Jobs.enqueue``): a label or a version only with a
    template, not both; the job's own backoff base at most its own cap.
    ``label_field`` and ``version_field`` are what the caller named them.

    Raises:
        ValueError: the rule broken.
    """
    if template is None and (label, version) != (None, None):
        raise ValueError(f"{label_field} and {version_field} choose a version of the job's "
                         "template: give them with template")
    if label is not None and version is not None:
        raise ValueError(f"give {label_field} or {version_field}, not both")
    if (backoff_base_s is not None and backoff_cap_s is not None
            and backoff_base_s > backoff_cap_s):
        raise ValueError("backoff_base_s must be at most backoff_cap_s")


class JobRequest(BaseModel):
    """Everything a worker needs to run a job; exactly one of ``template`` and ``prompt``.

    ``template`` (with ``variables``, and optionally ``template_label`` or
    ``template_version``) is rendered by the application's templates; ``prompt`` (and
    ``system``) is sent as given. ``task_type`` picks the user's configuration (a template's
    own task type when not given, else ``chat``); ``overrides`` are the request layer of
    resolution. ``schema`` (a JSON Schema) checks a ``json`` answer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    user_id: Name
    template: Name | None = None
    template_label: TemplateLabel | None = None
    template_version: TemplateVersion | None = None
    template_source: _Short | None = None
    variables: TextObject = {}
    prompt: Annotated[str, Field(min_length=1), NO_NUL] | None = None
    system: Text | None = None
    format: OutputFormat = "text"
    json_schema: TextObject | None = Field(default=None, alias="schema")
    task_type: Name | None = None
    overrides: ConfigRequest | None = None
    queue: _Short = "default"
    priority: int = Field(default=0, ge=-1000, le=1000)
    max_retries: int | None = Field(default=None, ge=0, le=50)
    backoff_base_s: BackoffSeconds | None = None
    backoff_cap_s: BackoffSeconds | None = None
    parent_output_id: Text | None = None
    relation: Relation | None = None

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        if (self.template is None) == (self.prompt is None):
            raise ValueError("give either template= (with variables=) or prompt=, not both "
                             "and not neither")
        check_choices(template=self.template, label=self.template_label,
                      version=self.template_version, backoff_base_s=self.backoff_base_s,
                      backoff_cap_s=self.backoff_cap_s)
        if self.json_schema is not None and self.format != "json":
            raise ValueError("schema= checks JSON answers: use it with format='json'")
        return self


class JobHandle(BaseModel):
    """An enqueued job: its ids, where it is, and when it should be done.

    ``created`` is False when a job with the same ``unique_key`` was pending or running:
    this is that job.
    """

    model_config = ConfigDict(frozen=True)

    job_id: int
    output_id: str
    status: OutputStatus
    state: JobState
    created: bool
    estimated_completion: AwareDatetime


class JobEvent(BaseModel):
    """A job's state change, as listeners (``app.jobs.subscribe``) and the log see it: ids,
    template, model, attempt and latency — never prompt content.

    ``error`` is the message the job's user sees (it can quote what the user sent: only
    listeners in the process where it happened get it); ``error_kind`` and ``error_reason``
    say what it was without content, for the log and other processes: a Python class name
    beamish's code chose (``lease`` for the ends leases decide) and a fixed code."""

    model_config = ConfigDict(frozen=True)

    event: EventKind
    job_id: int | None = None
    """The job's id; an event may leave it out (None is left out of a relayed event too,
    so it must have a default for the event to be read back)."""
    output_id: str
    user_id: str
    queue: str | None = None
    status: OutputStatus
    attempt: int = 0
    template: str | None = None
    template_version: int | None = None
    model: str | None = None
    latency_ms: int | None = None
    error: str | None = None
    error_kind: str | None = Field(default=None, max_length=128,
                                   pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    error_reason: ErrorReason | None = None
    retry_at: datetime | None = None


class RenderedPrompt(Protocol):
    """A template rendered for a job (``beamish.templates.RenderedPrompt`` fits)."""

    @property
    def template(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def prompt(self) -> str: ...

    @property
    def system(self) -> str | None: ...

    @property
    def task_type(self) -> str | None: ...

    @property
    def output_format(self) -> str | None: ...


class Renderer(Protocol):
    """Renders a named template with variables (the application's templates)."""

    def render(self, name: str, variables: dict[str, Any], *, label: str | None = None,
               version: int | None = None) -> RenderedPrompt | Awaitable[RenderedPrompt]:
        """The rendered prompt (or an awaitable of it); raises on a missing variable or a
        template that does not render."""
        ...


__all__ = ["MAX_BACKOFF_S", "BackoffSeconds", "EventKind", "JobEvent", "JobHandle",
           "JobRequest", "RenderedPrompt", "Renderer", "TemplateLabel", "TemplateVersion",
           "check_choices"]
