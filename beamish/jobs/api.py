"""``Jobs``: the Python API of durable LLM jobs (``app.jobs``).

::

    handle = await app.jobs.enqueue(prompt="Summarise: ...", user_id="ada", format="markdown")
    output = await app.jobs.wait(handle.output_id, user_id="ada", timeout=30)
    await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="up")
    rating = await app.jobs.get_feedback(handle.output_id, user_id="ada")
    again = await app.jobs.rerun(handle.output_id, user_id="ada")

Every method that names a ``user_id`` acts only on that user's outputs and jobs: another
user's is ``OutputForbiddenError``, an unknown id ``JobNotFoundError``. Only a completed
output can be rated (``OutputNotCompletedError``). State changes are
published to ``subscribe``'s listeners and logged as one JSON line each (``beamish.jobs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError

from beamish.jobs.actors import submit
from beamish.jobs.context import ENQUEUER, PRUNER, JobListener, JobsContext
from beamish.jobs.errors import (
    InvalidJobError,
    JobNotFoundError,
    JobsNotRunningError,
    MissingPromptError,
    OutputForbiddenError,
    OutputNotCompletedError,
)
from beamish.jobs.execution import rendered_too_long
from beamish.jobs.formats import check_schema
from beamish.jobs.models import (
    JobEvent,
    JobHandle,
    JobRequest,
    RenderedPrompt,
    Renderer,
    check_choices,
)
from beamish.jobs.requested import named, unserved, unusable
from beamish.jobs.schedule import OUTPUT_STATUS, estimate_completion, retry_policy
from beamish.jobs.waiters import ENDED
from beamish.llm.errors import NoUsableProviderError
from beamish.llm.hierarchy import ConfigRequest
from beamish.llm.settings import PROVIDERS
from beamish.runtime import call, send
from beamish.store import NotFoundError
from beamish.store.job_models import (
    EnqueuedJob,
    FeedbackRecord,
    FeedbackStats,
    NewJob,
    OutputFilter,
    OutputPage,
    OutputRecord,
    Rating,
    Relation,
)
from beamish.store.models import new_request_id
from beamish.store.text import NUL, NUL_PROBLEM

MAX_REASON_CHARS = 2000
MAX_WAIT_S = 60.0
"""The longest wait for an output's end over HTTP or the CLI (a long poll; a proxy in
front may cut sooner). ``Jobs.wait`` itself takes any timeout."""


class Jobs:
    """Enqueue jobs, read their outputs, rate, re-run and cancel them (see module docs)."""

    def __init__(self, ctx: JobsContext) -> None:
        self._ctx = ctx

    def set_renderer(self, renderer: Renderer | None) -> None:
        """Render template jobs with ``renderer`` from now on (the application hands its
        templates here; without one, template jobs fail saying so)."""
        self._ctx.renderer = renderer

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        """Call ``listener(JobEvent)`` on every job state change (queued, started, retried,
        completed, failed, cancelled, feedback) of this process's jobs — and, on PostgreSQL,
        of the jobs other processes sharing the queue run (their events carry an error's
        kind, not its message); returns the unsubscribe function. Exceptions it raises are
        logged, never raised to the job.

        Order: the events this process publishes reach the listener in the order they
        happened, and a job enqueued here is ``queued`` before its caller hears of it.
        Events of other processes keep their own order too, but can cross this process's
        events of the same job (queued here, started there): the listener may get a job's
        ``started`` before its ``queued``. Where that matters, order a job's events by
        ``beamish.jobs.ordering.rank`` — ``queued`` < ``started`` (n) < ``retried`` (n) <
        ``started`` (n + 1) < its end (completed, failed or cancelled, after which nothing
        comes) — and drop what is older than what was shown (``NewestEvents`` does, as the
        user channels' feed does). ``feedback`` events are no state change and have no
        rank. Each event reaches the listener once."""
        return self._ctx.subscribe(listener)

    async def enqueue(self, *, user_id: str, template: str | None = None,
                      variables: dict[str, Any] | None = None, prompt: str | None = None,
                      system: str | None = None, format: str | None = None,
                      schema: dict[str, Any] | None = None, task_type: str | None = None,
                      overrides: ConfigRequest | dict[str, Any] | None = None,
                      queue: str = "default", priority: int = 0,
                      run_at: datetime | None = None, unique_key: str | None = None,
                      max_retries: int | None = None, backoff_base_s: float | None = None,
                      backoff_cap_s: float | None = None, template_label: str | None = None,
                      template_version: int | None = None,
                      check_template: bool = False) -> JobHandle:
        """Queue a job: a ``template`` with ``variables``, or a raw ``prompt`` — or neither,
        when the user's configuration of ``task_type`` (``chat`` when not given) names a
        template (a global config's ``template`` and ``template_label``): that template is
        rendered with ``variables``, and the job keeps the task type it was chosen for.

        A job with a ``schema`` and no ``format`` is ``json`` (as a ``JobSubmission`` is);
        a template job without either takes its template version's output format (``text``
        when the version names none), and a raw prompt without a format is ``text``. With
        ``check_template``, a template (named or configured) that does not render with
        ``variables`` fails the enqueue (a ``TemplateError`` naming each variable) rather
        than, later, the job — and so does one that renders more than ``[jobs]
        max_prompt_chars`` of prompt and system (``InvalidJobError``), the bound a raw
        prompt has.

        ``queue`` is one of ``[jobs] queues`` (``high``, ``default``, ``low``); a lower
        ``priority`` runs first within it; ``run_at`` (aware) schedules it; while a job with
        ``unique_key`` is pending or running, enqueueing the key again for the same user
        returns that job (``created`` False; keys are per user). ``max_retries``,
        ``backoff_base_s`` and ``backoff_cap_s`` override the queue's retry policy for this
        job (seconds above 0 and at most a day, the base at most the cap:
        ``JobSubmission``'s rules).

        Raises:
            InvalidJobError: what is wrong with the arguments: among them values that are
                not plain JSON (a set, bytes, a Decimal, NaN) in ``variables`` or
                ``schema``, and ``overrides`` naming a provider or model that cannot be
                used now (the job would run on another: ``beamish.jobs.requested``).
            MissingPromptError: neither template nor prompt, and no configured template.
            JobLimitError: the user has ``max_unfinished_per_user`` jobs pending or running.
            TemplateError: (``check_template``) the template does not exist or does not
                render with ``variables`` (``beamish.templates.errors``).
        """
        if format is None and schema is not None:
            format = "json"  # a schema checks JSON answers: it means json, as over HTTP
        fields: dict[str, Any] = {
            "user_id": user_id, "template": template, "variables": variables or {},
            "prompt": prompt, "system": system, "format": format, "schema": schema,
            "task_type": task_type, "overrides": overrides, "queue": queue,
            "priority": priority, "max_retries": max_retries,
            "backoff_base_s": backoff_base_s, "backoff_cap_s": backoff_cap_s,
            "template_label": template_label, "template_version": template_version}
        if template is None and prompt is None:
            await self._configured_template(fields)
        served_task_type = None
        if fields["template"] is not None and self._ctx.renderer is not None:
            rendered = await self._render_at_enqueue(fields, check=check_template)
            if rendered is not None:
                fields["format"] = fields["format"] or rendered.output_format
                served_task_type = rendered.task_type
        fields["format"] = fields["format"] or "text"
        request = self._request(fields)
        return await self._enqueue(request, run_at=run_at, unique_key=unique_key,
                                   task_type=served_task_type)

    async def _configured_template(self, fields: dict[str, Any]) -> None:
        """Fill in the template the user's configuration of the job's task type names
        (``MissingPromptError`` when it names none)."""
        try:
            check_choices(template=None, label=fields["template_label"],
                          version=fields["template_version"], backoff_base_s=None,
                          backoff_cap_s=None)
        except ValueError as error:
            raise InvalidJobError(str(error)) from None
        task_type = fields["task_type"] or "chat"
        resolver = self._ctx.services.current_resolver()
        config = await resolver.resolve(fields["user_id"], task_type)
        if config.template is None:
            raise MissingPromptError(task_type, fields["user_id"])
        fields.update(template=config.template, template_label=config.template_label,
                      template_source=str(config.sources["template"]), task_type=task_type)

    async def _render_at_enqueue(self, fields: dict[str, Any], *, check: bool,
                                 ) -> RenderedPrompt | None:
        """The job's template rendered now, when its format or ``check`` asks for it; a
        render that fails is raised with ``check``, else left to the job (None)."""
        assert self._ctx.renderer is not None
        if fields.get("format") is not None and not check:
            return None
        try:
            rendered: Any = self._ctx.renderer.render(
                fields["template"], dict(fields["variables"] or {}),
                label=fields.get("template_label"), version=fields.get("template_version"))
            if inspect.isawaitable(rendered):
                rendered = await rendered
        except Exception:
            if check:
                raise
            return None  # the attempt fails with the reason, as any render failure does
        too_long = rendered_too_long(rendered, self._ctx.settings.max_prompt_chars)
        if check and too_long is not None:  # else the attempt fails so, as above
            raise InvalidJobError(too_long, param="variables")
        return cast(RenderedPrompt, rendered)

    def _request(self, fields: dict[str, Any]) -> JobRequest:
        try:
            request = JobRequest.model_validate(fields)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'job'}: {e['msg']}"
                                 for e in error.errors())
            raise InvalidJobError(f"invalid job: {problems}") from None
        self._check_bounds(request)
        return request

    def _check_bounds(self, request: JobRequest) -> None:
        settings = self._ctx.settings
        if request.queue not in settings.queues:
            raise InvalidJobError(f"queue {request.queue!r} is not one of [jobs] queues "
                                  f"({', '.join(sorted(settings.queues))})")
        prompt_chars = len(request.prompt or "") + len(request.system or "")
        if prompt_chars > settings.max_prompt_chars:
            raise InvalidJobError(f"prompt and system are {prompt_chars} characters; at "
                                  f"most {settings.max_prompt_chars} ([jobs] max_prompt_chars)")
        if len(_json(request.variables, "variables")) > settings.max_variables_bytes:
            raise InvalidJobError(f"variables are over {settings.max_variables_bytes} bytes "
                                  "of JSON ([jobs] max_variables_bytes)")
        if request.json_schema is not None:
            if len(_json(request.json_schema, "schema")) > settings.max_schema_bytes:
                raise InvalidJobError(f"schema is over {settings.max_schema_bytes} bytes of "
                                      "JSON ([jobs] max_schema_bytes)")
            check_schema(request.json_schema)
        if (request.backoff_base_s, request.backoff_cap_s) != (None, None):
            policy = retry_policy(settings, request).backoff
            if policy.base > policy.cap:
                raise InvalidJobError(f"backoff_base_s ({policy.base:g}) is above "
                                      f"backoff_cap_s ({policy.cap:g}, the job's or its "
                                      "queue's): the base must be at most the cap")

    async def _enqueue(self, request: JobRequest, *, run_at: datetime | None,
                       unique_key: str | None, task_type: str | None = None) -> JobHandle:
        """Insert ``request``'s job; ``task_type`` is what its template version serves, when
        a render at enqueue told (the output's task type until an attempt writes its own)."""
        ctx = self._ctx
        if run_at is not None and run_at.tzinfo is None:
            raise InvalidJobError("run_at must be timezone-aware (UTC, say)")
        if unique_key is not None and NUL in unique_key:
            raise InvalidJobError(f"unique_key {NUL_PROBLEM}", param="unique_key")
        await self._check_requested_model(request, task_type)
        now = ctx.now()
        due = run_at or now
        policy = retry_policy(ctx.settings, request)
        # An output id is made as a request id is (a UUIDv7's hex digits): unguessable,
        # its randomness read in bulk, and in creation order, so the outputs' primary
        # key grows at its end.
        new = NewJob(
            queue=request.queue, priority=request.priority, max_attempts=policy.max_attempts,
            run_at=due, scheduled=due > now, unique_key=unique_key, user_id=request.user_id,
            output_id=new_request_id(), args=request.model_dump(mode="json", by_alias=True,
                                                                exclude_defaults=True),
            template_name=request.template, template_version=request.template_version,
            variables=request.variables,
            task_type=request.task_type or task_type or "chat",
            format=request.format, parent_output_id=request.parent_output_id,
            relation=request.relation)
        # The enqueuer publishes the job's ``queued`` event and wakes its queue.
        enqueued: EnqueuedJob = await submit(ctx, ENQUEUER, new)
        job = enqueued.job
        load = ctx.queue_load(job.queue)
        concurrency = ctx.settings.queues[job.queue].concurrency
        return JobHandle(job_id=job.id, output_id=job.output_id,
                         status=OUTPUT_STATUS[job.state], state=job.state,
                         created=enqueued.created,
                         estimated_completion=estimate_completion(
                             now=now, run_at=job.run_at, backlog=load.backlog,
                             concurrency=concurrency, mean_s=load.mean_s))

    async def _check_requested_model(self, request: JobRequest, task_type: str | None,
                                     ) -> None:
        """Refuse a job whose own provider or model (its overrides, or the ones a re-run
        or regeneration pins) the resolver skips now: it would run on another model
        (``beamish.jobs.requested``)."""
        asked = named(request.overrides)
        if asked is None:
            return
        param = "overrides" if request.relation is None else "model"
        resolver = self._ctx.services.current_resolver()
        try:
            config = await resolver.resolve(request.user_id,
                                            request.task_type or task_type or "chat",
                                            request=request.overrides)
        except NoUsableProviderError as error:
            raise InvalidJobError(unusable(asked, error.warnings), param=param) from None
        problem = unserved(request.overrides, config)
        if problem is not None:
            raise InvalidJobError(problem, param=param)

    async def get_output(self, output_id: str, *, user_id: str | None = None) -> OutputRecord:
        """An output (of ``user_id``, when given: trusted code may leave it out)."""
        try:
            output = await self._ctx.services.store.get_output(output_id)
        except NotFoundError:
            raise JobNotFoundError(f"no output {output_id!r}") from None
        if user_id is not None and output.user_id != user_id:
            raise OutputForbiddenError(f"output {output_id!r}", user_id)
        return output

    async def wait(self, output_id: str, *, user_id: str | None = None,
                   timeout: float | None = None) -> OutputRecord:
        """The output once it has ended (completed, failed or cancelled); at most
        ``timeout`` seconds (then ``TimeoutError``), for ever when None.

        Woken by the output's job events (this process's, and on PostgreSQL other
        processes'), and reading the output at least every ``poll_interval_s`` besides, so
        an end no event told of is found too. Ownership as ``get_output``.

        Raises:
            WaitLimitError: ``user_id`` already has ``[jobs] max_waits_per_user`` waits
                running, or the process ``max_waits`` (``beamish.jobs.waiters``).
        """
        waiter = self._ctx.waiters.add(output_id, user_id)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    waiter.ended.clear()  # an end told after this read wakes the next one
                    output = await self.get_output(output_id, user_id=user_id)
                    if output.status in ENDED:
                        return output
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(waiter.ended.wait(),
                                               self._ctx.settings.poll_interval_s)
        finally:
            self._ctx.waiters.remove(waiter)

    async def list_outputs(self, user_id: str, *, filters: OutputFilter | None = None,
                           cursor: str | None = None, limit: int = 50) -> OutputPage:
        """``user_id``'s outputs, newest first; pass ``next_cursor`` back for the next page."""
        try:
            return await self._ctx.services.store.list_outputs(
                user_id, filters=filters, cursor=cursor, limit=limit)
        except ValueError as error:
            raise InvalidJobError(str(error)) from None

    async def cancel(self, job_id: int, *, user_id: str | None = None) -> OutputRecord:
        """Cancel a pending or running job (of ``user_id``, when given); a running one is
        stopped in its worker. A job that had finished is left as it is. Returns its output.
        """
        store = self._ctx.services.store
        try:
            job = await store.get_job(job_id)
        except NotFoundError:
            raise JobNotFoundError(f"no job {job_id}") from None
        if user_id is not None and job.user_id != user_id:
            raise OutputForbiddenError(f"job {job_id}", user_id)
        cancelled = await store.cancel_job(job_id)
        if cancelled is not None:
            worker = self._ctx.running.get(job_id)
            if worker is not None:
                send(worker, ("cancel", job_id))
            self._ctx.publish(JobEvent(event="cancelled", job_id=job_id,
                                       output_id=job.output_id, user_id=job.user_id,
                                       queue=job.queue, status="cancelled",
                                       attempt=cancelled.job.attempt,
                                       template=job.args.get("template")))
        return await store.get_output(job.output_id)

    async def set_feedback(self, output_id: str, *, user_id: str, rating: Rating,
                           reason: str | None = None) -> FeedbackRecord:
        """Rate one's own completed output ``up`` or ``down`` (again: the rating is
        replaced).

        Raises:
            OutputNotCompletedError: the output is pending, processing, failed or cancelled
                (an output that has completed stays so: rate it then).
        """
        if rating not in ("up", "down"):
            raise InvalidJobError(f"rating must be 'up' or 'down', not {rating!r}")
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise InvalidJobError(f"reason is {len(reason)} characters; at most "
                                  f"{MAX_REASON_CHARS}")
        if reason is not None and NUL in reason:
            raise InvalidJobError(f"reason {NUL_PROBLEM}", param="reason")
        output = await self.get_output(output_id, user_id=user_id)
        if output.status != "completed":
            raise OutputNotCompletedError(output_id, output.status)
        record = await self._ctx.services.store.set_feedback(output_id, user_id, rating,
                                                             reason)
        self._ctx.publish(JobEvent(event="feedback", job_id=output.job_id,
                                   output_id=output_id, user_id=user_id,
                                   status=output.status, template=output.template_name,
                                   template_version=output.template_version,
                                   model=output.model))
        return record

    async def get_feedback(self, output_id: str, *, user_id: str) -> FeedbackRecord | None:
        """``user_id``'s own rating of their output ``output_id``, or None when they have
        not rated it. Ownership as ``get_output``."""
        await self.get_output(output_id, user_id=user_id)
        return await self._ctx.services.store.get_feedback(output_id, user_id)

    async def feedback_stats(self, *, template_name: str | None = None,
                             ) -> list[FeedbackStats]:
        """Ups and downs of completed outputs per template version and model (of one
        template, when given)."""
        return await self._ctx.services.store.feedback_stats(template_name=template_name)

    async def prune(self) -> int:
        """Delete the jobs finished more than ``[jobs] prune_after_s`` ago now (the pruner
        does it every ``prune_interval_s``); how many. Outputs and feedback stay.

        Raises:
            JobsNotRunningError: the job tree is not running.
            StoreError: the database refused.
        """
        pruner = self._ctx.services.node.whereis(PRUNER)
        if pruner is None:
            raise JobsNotRunningError("the job pruner is not running (restarting, or the "
                                      "application is stopped)")
        return int(await call(pruner, "prune", timeout=None))

    async def rerun(self, output_id: str, *, user_id: str) -> JobHandle:
        """A new job with the identical parameters of ``output_id``'s, linked to it.

        Identical means as the parent ran, not as it was asked: the template version it
        rendered (not its label's version now), its variables, format, schema and task type,
        and the provider, model and parameters it was resolved to (as request overrides, so
        a config changed since does not change the re-run). What the parent never got to
        (an attempt that did not render or resolve) is taken from its request. A parent
        whose provider or model cannot be used now is not re-run on another
        (``InvalidJobError`` naming it and why).
        """
        return await self._again(output_id, user_id, "rerun")

    async def regenerate(self, output_id: str, *, user_id: str,
                         variables: dict[str, Any] | None = None, model: str | None = None,
                         parameters: dict[str, Any] | None = None) -> JobHandle:
        """A new job like ``output_id``'s re-run with other ``variables``, ``model`` or
        ``parameters``, linked to it; what is not changed is as the parent ran.

        ``model`` may be ``provider:model``; a bare model keeps the parent's provider.
        ``parameters`` are merged over the parent's (a field given here wins).
        ``variables`` fill the parent's template: a parent that ran a raw prompt takes none
        (``InvalidJobError``).
        """
        if variables is None and model is None and parameters is None:
            raise InvalidJobError("regenerate needs new variables, model or parameters; "
                                  "use rerun for the same request")
        return await self._again(output_id, user_id, "regenerate", variables=variables,
                                 model=model, parameters=parameters)

    async def _again(self, output_id: str, user_id: str, relation: Relation, *,
                     variables: dict[str, Any] | None = None, model: str | None = None,
                     parameters: dict[str, Any] | None = None) -> JobHandle:
        output = await self.get_output(output_id, user_id=user_id)
        fields = {**output.request, **_as_ran(output), "parent_output_id": output_id,
                  "relation": relation}
        if model is not None or parameters is not None:
            fields["overrides"] = _changed_overrides(fields.get("overrides") or {}, model,
                                                     parameters)
        if variables is not None:
            if fields.get("template") is None:
                raise InvalidJobError(
                    f"variables fill a template, and output {output_id!r} ran a raw prompt: "
                    "regenerate it with another model or parameters, or enqueue a new "
                    "prompt", param="variables")
            fields["variables"] = variables
            if self._ctx.renderer:
                await self._render_at_enqueue(fields, check=True)
        return await self._enqueue(self._request(fields), run_at=None, unique_key=None)


def _as_ran(output: OutputRecord) -> dict[str, Any]:
    """The request fields that make a new job run as ``output``'s did: the template version
    it rendered, the task type it served, the provider and model that answered (the
    completion's: the fallback's, when the chain was walked) and the parameters it was
    resolved to — each only once an attempt got that far (the finish wrote them)."""
    pinned: dict[str, Any] = {}
    if output.template_name is not None and output.template_version is not None:
        pinned.update(template=output.template_name, template_version=output.template_version,
                      template_label=None, task_type=output.task_type)
    elif output.template_name is None:
        pinned["task_type"] = output.task_type  # a raw prompt's is known from its enqueue
    if output.provider is not None and output.model is not None:
        pinned["overrides"] = {"provider": output.provider, "model": output.model,
                               "parameters": output.parameters or {}}
    return pinned


def _changed_overrides(base: dict[str, Any], model: str | None,
                       parameters: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` overrides with a regenerate's ``model`` (``provider:model``, or a bare model
    for ``base``'s provider) and ``parameters`` (merged over ``base``'s)."""
    changed = dict(base)
    if model is not None:
        prefix, colon, rest = model.partition(":")
        if colon and prefix in PROVIDERS:
            changed.update(provider=prefix, model=rest)
        else:
            changed["model"] = model
    if parameters is not None:
        changed["parameters"] = {**(base.get("parameters") or {}), **parameters}
    return changed


def _json(value: Any, field: str) -> bytes:
    """``value`` as compact JSON, if it is plain JSON (what the store writes and reads back
    the same); ``InvalidJobError`` naming where in ``field`` it is not."""
    problem = _not_plain_json(value, field)
    if problem is None:
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except RecursionError:
            problem = f"{field}: nested too deeply"
    raise InvalidJobError(f"{problem}: a job's {field} must be plain JSON (objects with "
                          "string keys, arrays, strings, finite numbers, true, false, "
                          "null)", param=field)


def _not_plain_json(value: Any, field: str) -> str | None:
    """Where and what in ``value`` is not plain JSON (``variables.key.0: a set ...``), or
    None. Iterative, so that deep nesting cannot exhaust the stack here."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        path, item = stack.pop()
        if item is None or isinstance(item, str | bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{path}: {item!r} is not a JSON number"
        elif isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    return f"{path}: the key {key!r} is not a string"
            stack.extend((f"{path}.{key}", inner) for key, inner in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{index}", inner)
                         for index, inner in reversed(list(enumerate(item))))
        else:
            return f"{path}: a value of type {type(item).__name__} is not JSON"
    return None


__all__ = ["Jobs"]
