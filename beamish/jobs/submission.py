"""``JobSubmission``: a job as a client sends it, over HTTP (``POST /api/v1/llm_jobs``) or on
the user channel (``enqueue`` on ``user:<id>``) — one shape, checked the same for both.

A template job names ``template`` with ``variables`` and optionally a ``label`` or a
``version``; a raw one gives ``prompt`` and optionally ``system``; a job that gives neither
renders, with its ``variables``, the template its ``task_type``'s configuration names for
the user (``MissingPromptError`` when it names none). The rest are ``Jobs.enqueue``'s
arguments: ``format`` (the template version's when not given), ``schema``, ``task_type``,
``overrides``, ``queue``, ``priority``, ``run_at``, ``unique_key``, ``max_retries``,
``backoff_base_s`` and ``backoff_cap_s`` (seconds, above 0, at most a day, the base at most
the cap). The label, version and backoff rules are ``JobRequest``'s too (one set of field
types, and ``beamish.jobs.models.check_choices``): ``Jobs.enqueue`` takes and refuses the
same values. A template —
named or configured — that does not render with the variables fails the enqueue, naming
each variable (``TemplateVariablesError``), not the job later.
``user_id`` names whom the job is for; only trusted callers (an admin) may name another
user than themselves — the transports check that.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from beamish.jobs.api import Jobs
from beamish.jobs.models import (
    BackoffSeconds,
    JobHandle,
    TemplateLabel,
    TemplateVersion,
    check_choices,
)
from beamish.llm.hierarchy import ConfigRequest
from beamish.store.job_models import OutputFormat
from beamish.store.text import NO_NUL, Text, TextObject

MAX_NAME = 255
_Named = Annotated[str, Field(min_length=1, max_length=MAX_NAME), NO_NUL]


class JobSubmission(BaseModel):
    """One job to enqueue (see the module docs); unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    template: _Named | None = Field(default=None,
                                    description="a template's name (or give prompt; or "
                                                "neither, for the task type's configured "
                                                "template)")
    variables: TextObject = Field(default_factory=dict,
                                  description="the template's variables")
    label: TemplateLabel | None = Field(
        default=None, description="the template label to render (production when neither "
                                  "label nor version is given)")
    version: TemplateVersion | None = Field(default=None,
                                            description="the template version to render")
    prompt: Annotated[str, Field(min_length=1), NO_NUL] | None = Field(
        default=None, description="a raw prompt (or give template)")
    system: Text | None = Field(default=None, description="a raw system prompt")
    format: OutputFormat | None = Field(
        default=None, description="text, json, markdown or html; a template job without "
                                  "one takes its version's, else text")
    json_schema: TextObject | None = Field(
        default=None, alias="schema", description="a JSON Schema the json answer must fit")
    task_type: _Named | None = None
    overrides: ConfigRequest | None = Field(
        default=None, description="provider, model and parameters for this job")
    queue: Annotated[str, Field(min_length=1, max_length=64), NO_NUL] = "default"
    priority: int = Field(default=0, ge=-1000, le=1000,
                          description="within the queue, lower runs first")
    run_at: AwareDatetime | None = Field(default=None,
                                         description="run no earlier than this")
    unique_key: _Named | None = Field(
        default=None,
        description="while a job with this key is pending or running, that job is answered")
    max_retries: int | None = Field(default=None, ge=0, le=50)
    backoff_base_s: BackoffSeconds | None = Field(
        default=None,
        description="seconds before the first retry at most (then doubling, full jitter)")
    backoff_cap_s: BackoffSeconds | None = Field(
        default=None, description="the longest wait before a retry")
    user_id: _Named | None = Field(default=None,
                                   description="whom the job is for (admins only; default: "
                                               "the caller)")

    @model_validator(mode="after")
    def _one_source(self) -> JobSubmission:
        if self.template is not None and self.prompt is not None:
            raise ValueError("give either template (with variables) or prompt, not both")
        check_choices(template=self.template, label=self.label, version=self.version,
                      backoff_base_s=self.backoff_base_s, backoff_cap_s=self.backoff_cap_s,
                      label_field="label", version_field="version")
        if self.json_schema is not None and self.format not in (None, "json"):
            raise ValueError("schema checks JSON answers: use it with format 'json'")
        return self

    async def enqueue(self, jobs: Jobs, user_id: str) -> JobHandle:
        """Queue this job for ``user_id`` (whom the transport has checked)."""
        return await jobs.enqueue(
            user_id=user_id, template=self.template, variables=self.variables,
            prompt=self.prompt, system=self.system,
            format=self.format, schema=self.json_schema, task_type=self.task_type,
            overrides=self.overrides, queue=self.queue, priority=self.priority,
            run_at=self.run_at, unique_key=self.unique_key, max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s, backoff_cap_s=self.backoff_cap_s,
            template_label=self.label, template_version=self.version, check_template=True)


__all__ = ["JobSubmission"]
