"""One attempt of one job: render, resolve, call, record usage, parse — to an
``AttemptResult`` for the finisher to write.

The order keeps effects exactly once. Each attempt records its usage under a request id of
its own, through the same durable path as session calls (``Sessions.record_event``), and
only once that usage is durable is the attempt's result handed on; the finisher then
completes the output and the job in one transaction, and only while this process still
holds the job's lease. An attempt that dies mid-call leaves no result: its job runs again
once the lease expires, and that attempt records its own usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from typing import Any

from beamish.jobs.context import JobsContext
from beamish.jobs.errors import AttemptError, PermanentAttemptError
from beamish.jobs.formats import parse_answer
from beamish.jobs.models import JobRequest, RenderedPrompt
from beamish.jobs.requested import unserved
from beamish.jobs.schedule import after_failure, classify, retry_policy
from beamish.llm.hierarchy import ResolvedConfig
from beamish.llm.providers.base import ChatMessage, Completion
from beamish.sessions.api import Sessions
from beamish.store import UsageEvent, UsageStatus
from beamish.store.job_models import AttemptResult, JobRecord
from beamish.store.models import new_request_id


class _Prepared:
    """The prompt and configuration of an attempt, as far as it got."""

    __slots__ = ("config", "prompt", "system", "task_type", "template_source",
                 "template_version")

    def __init__(self) -> None:
        self.prompt: str | None = None
        self.system: str | None = None
        self.task_type: str | None = None
        """The task type the attempt serves, once known (the job's, else its template
        version's, else ``chat``)."""
        self.template_version: int | None = None
        self.template_source: str | None = None
        """Where the rendered template came from: ``request`` (the job named it) or the
        config layer that named it; None for a raw prompt."""
        self.config: ResolvedConfig | None = None


async def run_attempt(ctx: JobsContext, job: JobRecord) -> AttemptResult:
    """Run attempt ``job.attempt`` of ``job``; how it ended (never raises but cancellation).

    Usage of an LLM call is durable before this returns; a cancelled attempt hands its
    usage (status ``cancelled``) to the recorder without waiting.
    """
    prepared = _Prepared()
    started = time.monotonic()
    try:
        request = JobRequest.model_validate(job.args)
        await _prepare(ctx, request, prepared)
        completion = await _call(ctx, job, prepared, started)
        parsed = parse_answer(completion.text, request.format, request.json_schema)
    except Exception as error:  # CancelledError is not an Exception: it passes
        return _failed(ctx, job, prepared, classify(error), started)
    return _result(job, ctx, prepared, started, state="completed",
                   provider=completion.provider, model=completion.model,
                   raw_response=completion.text, parsed_output=parsed.parsed,
                   prompt_tokens=completion.usage.prompt_tokens,
                   completion_tokens=completion.usage.completion_tokens)


async def _prepare(ctx: JobsContext, request: JobRequest, prepared: _Prepared) -> None:
    if request.template is not None:
        await _render(ctx, request, prepared)
        prepared.template_source = request.template_source or "request"
    else:
        prepared.prompt, prepared.system = request.prompt, request.system
    prepared.task_type = request.task_type or prepared.task_type or "chat"
    resolver = ctx.services.current_resolver()
    config = await resolver.resolve(request.user_id, prepared.task_type,
                                    request=request.overrides)
    unusable = unserved(request.overrides, config)
    if unusable is not None:  # it went away while the job waited: the output names no model
        raise PermanentAttemptError(unusable, reason="requested_model_unusable")
    prepared.config = config


async def _render(ctx: JobsContext, request: JobRequest, prepared: _Prepared) -> None:
    if ctx.renderer is None:
        raise PermanentAttemptError("template jobs need the application's templates, and "
                                    "none are configured", reason="no_templates")
    assert request.template is not None
    try:
        rendered: Any = ctx.renderer.render(request.template, dict(request.variables),
                                            label=request.template_label,
                                            version=request.template_version)
        if inspect.isawaitable(rendered):
            rendered = await rendered
    except Exception as error:
        raise PermanentAttemptError(f"template {request.template!r} did not render: "
                                    f"{error}", reason="template_did_not_render") from error
    too_long = rendered_too_long(rendered, ctx.settings.max_prompt_chars)
    if too_long is not None:  # every attempt would render as much: no LLM call, no retry
        raise PermanentAttemptError(too_long, reason="prompt_too_long")
    prepared.prompt, prepared.system = rendered.prompt, rendered.system
    prepared.template_version = rendered.version
    prepared.task_type = rendered.task_type


def rendered_too_long(rendered: RenderedPrompt, limit: int) -> str | None:
    """Why ``rendered`` is more prompt than a job may send (its prompt and system prompt
    over ``limit``, ``[jobs] max_prompt_chars``: the bound a raw prompt has at enqueue),
    or None."""
    chars = len(rendered.prompt) + len(rendered.system or "")
    if chars <= limit:
        return None
    return (f"template {rendered.template!r} version {rendered.version} rendered "
            f"{chars} characters of prompt and system; at most {limit} "
            "([jobs] max_prompt_chars): shorten the variables")


async def _call(ctx: JobsContext, job: JobRecord, prepared: _Prepared,
                started: float) -> Completion:
    assert prepared.config is not None
    assert prepared.prompt is not None
    messages = (*((ChatMessage(role="system", content=prepared.system),)
                  if prepared.system else ()),
                ChatMessage(role="user", content=prepared.prompt))
    sessions = Sessions(ctx.services)
    request_id = new_request_id()  # one per attempt: a re-run attempt counts its own
    try:
        completion = await ctx.services.llm.complete(prepared.config, messages)
    except asyncio.CancelledError:
        sessions.record_event(None, _usage(job, prepared, request_id, "cancelled", started))
        raise
    except Exception:
        await sessions.record_event(None, _usage(job, prepared, request_id, "error", started))
        raise
    await sessions.record_event(None, _usage(job, prepared, request_id, "ok", started,
                                             completion))
    return completion


def _usage(job: JobRecord, prepared: _Prepared, request_id: str, status: UsageStatus,
           started: float, completion: Completion | None = None) -> UsageEvent:
    config = prepared.config
    assert config is not None
    return UsageEvent(
        request_id=request_id, session_id=None, user_id=job.user_id,
        provider=completion.provider if completion else config.provider,
        model=completion.model if completion else config.model,
        task_type=config.task_type,
        prompt_tokens=completion.usage.prompt_tokens if completion else 0,
        completion_tokens=completion.usage.completion_tokens if completion else 0,
        latency_ms=int((time.monotonic() - started) * 1000), status=status)


def _failed(ctx: JobsContext, job: JobRecord, prepared: _Prepared, error: AttemptError,
            started: float) -> AttemptResult:
    described = {"error": str(error), "error_kind": error.kind, "error_reason": error.reason}
    try:
        policy = retry_policy(ctx.settings, JobRequest.model_validate(job.args))
    except ValueError:  # args that do not validate: nothing to retry
        return _result(job, ctx, prepared, started, state="discarded", **described)
    # The job row's max_attempts is what was fixed at enqueue; it wins over settings now.
    policy = dataclasses.replace(policy, max_attempts=job.max_attempts)
    failure = after_failure(error, attempt=job.attempt, policy=policy, now=ctx.now(),
                            random=ctx.random)
    return _result(job, ctx, prepared, started, state=failure.state, run_at=failure.run_at,
                   **described)


def _result(job: JobRecord, ctx: JobsContext, prepared: _Prepared, started: float,
            **fields: Any) -> AttemptResult:
    values: dict[str, Any] = {
        "job_id": job.id, "output_id": job.output_id, "leased_by": ctx.leased_by,
        "prompt": prepared.prompt, "system_prompt": prepared.system,
        "template_version": prepared.template_version, "task_type": prepared.task_type,
        "latency_ms": int((time.monotonic() - started) * 1000)}
    config = prepared.config
    if config is not None:
        values.update(
            provider=config.provider, model=config.model,
            parameters=config.parameters.model_dump(mode="json", exclude_defaults=True),
            provenance=_provenance(config, prepared.template_source))
    values.update(fields)  # what the answer says (the model that served) wins
    return AttemptResult(**values)


def _provenance(config: ResolvedConfig, template_source: str | None) -> dict[str, str]:
    """Where each value the attempt used came from: the config's sources, with the
    template's as the job had it (a template the job named is the request's; a raw prompt
    used none, whatever the config names)."""
    provenance = {k: str(v) for k, v in config.sources.items() if k != "template"}
    if template_source is not None:
        provenance["template"] = template_source
    return provenance


__all__ = ["rendered_too_long", "run_attempt"]
