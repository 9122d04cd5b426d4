"""LLM jobs and their stored outputs over HTTP (``beamish.jobs``).

A user's token reaches that user's jobs and outputs only: another user's is a 403, an id
that does not exist a 404 (admins are users here too: they act on their own outputs, and
enqueue for another user by naming ``user_id``).

* ``POST /api/v1/llm_jobs`` — enqueue (``beamish.jobs.JobSubmission``): 201 with
  ``{job_id, output_id, status, state, created, estimated_completion}``, or 200 with
  ``created: false`` and the existing job when ``unique_key`` matched a pending or running
  one. A template variable missing or mistyped is a 422 naming it; a render the sandbox
  refuses a 422 (``template_render_error``); the user's cap on unfinished jobs a 429. A job
  naming neither ``template`` nor ``prompt`` renders the template its ``task_type``'s
  configuration names for the user; when it names none, a 422 (``param: template``).
* ``POST /api/v1/llm_jobs/{job_id}/cancel`` — cancel a pending or running job; the output.
* ``GET /api/v1/llm_outputs`` — the caller's outputs, newest first, filtered by ``status``,
  ``template``, ``model`` and ``feedback`` (``up``/``down``); ``next_cursor`` pages on.
* ``GET /api/v1/llm_outputs/{output_id}`` — one output; ``?wait_s=N`` (at most 60) answers
  once it has ended, or after N seconds as it is then (a long poll instead of polling). A
  user's long polls at once are bounded by ``[jobs] max_waits_per_user`` and the server's
  by ``max_waits``: one more is a 429 (code ``wait_limit``).
* ``PUT /api/v1/llm_outputs/{output_id}/feedback`` — ``{rating: "up"|"down", reason?}``
  (one per user and output; a second replaces it). Only a completed output can be rated:
  any other is a 409 (``conflict``; rate it once it has completed).
* ``GET /api/v1/llm_outputs/{output_id}/feedback`` — the caller's own rating of their
  output; a 404 when they have not rated it.
* ``POST /api/v1/llm_outputs/{output_id}/rerun`` — a new job as the parent ran (its
  template version, task type, provider, model and parameters, whatever changed since);
  ``.../regenerate`` — one with other ``variables``, ``model`` or ``parameters``, the rest
  as the parent ran. Both link the new output to its parent and answer 201 like an enqueue.
* ``GET /api/admin/llm_outputs/stats`` — ups and downs per template version and model.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AwareDatetime, Field

from beamish.jobs import JobHandle, JobSubmission
from beamish.jobs.api import MAX_REASON_CHARS, MAX_WAIT_S
from beamish.server.api.deps import AppDep, CurrentPrincipal, check_user, get_admin
from beamish.server.api.errors import ERROR_RESPONSES, ErrorBody, ResourceNotFoundError
from beamish.server.api.models import Body, Out
from beamish.store.job_models import (
    FeedbackRecord,
    FeedbackStats,
    JobState,
    OutputFilter,
    OutputPage,
    OutputRecord,
    OutputStatus,
    Rating,
)
from beamish.store.models import LLMParameters
from beamish.store.text import NO_NUL

router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

MAX_PAGE = 200
"""The most outputs one page lists."""

OutputId = Annotated[str, Path(min_length=1, max_length=64, description="an output's id")]
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a job's id")]
Filter = Annotated[str | None, Query(min_length=1, max_length=255)]


class JobOut(Out):
    """An enqueued job: its ids, where it is and when it should be done.

    ``created`` is false when a job with the same ``unique_key`` was pending or running:
    this is that job (and the answer is 200, not 201).
    """

    job_id: int
    output_id: str
    status: OutputStatus
    state: JobState
    created: bool
    estimated_completion: AwareDatetime

    @classmethod
    def of(cls, handle: JobHandle) -> JobOut:
        """The view of ``handle``."""
        return cls(**handle.model_dump())


class FeedbackIn(Body):
    """A rating of an output, and why."""

    rating: Rating
    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS), NO_NUL] | None = None


class RegenerateIn(Body):
    """What to change for the new job: at least one of the three."""

    variables: dict[str, Any] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=255,
                              description="provider:model, or a bare model of the parent's "
                                          "provider")
    parameters: LLMParameters | None = Field(
        default=None, description="merged over the parameters the parent ran with")


class StatsOut(Out):
    """Ratings of completed outputs per template version and model."""

    stats: tuple[FeedbackStats, ...]


_ENQUEUE_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": said} for code, said in (
        (400, "the job cannot be run as given (queue, sizes, schema, backoff)"),
        (404, "no such template, version or label"),
        (429, "the user's cap on unfinished jobs"),
        (503, "no usable provider for the job's task type, or the job system is down"))}
"""What an enqueue may answer besides the errors of every endpoint."""


def _created(response: Response, handle: JobHandle) -> JobOut:
    response.status_code = status.HTTP_201_CREATED if handle.created else status.HTTP_200_OK
    return JobOut.of(handle)


@router.post("/api/v1/llm_jobs", summary="Enqueue an LLM job",
             status_code=status.HTTP_201_CREATED,
             responses={200: {"model": JobOut, "description": "the pending or running job "
                                                              "of the same unique_key"},
                        **_ENQUEUE_ERRORS})
async def enqueue_job(body: JobSubmission, caller: CurrentPrincipal, rt: AppDep,
                      response: Response) -> JobOut:
    """Queue a template or raw-prompt job for the caller (or, for an admin, ``user_id``)."""
    user_id = body.user_id or caller.user_id
    check_user(caller, user_id)
    return _created(response, await body.enqueue(rt.jobs, user_id))


@router.post("/api/v1/llm_jobs/{job_id}/cancel", summary="Cancel an LLM job")
async def cancel_job(job_id: JobId, caller: CurrentPrincipal, rt: AppDep) -> OutputRecord:
    """Cancel the caller's pending or running job; a finished one is left as it is."""
    return await rt.jobs.cancel(job_id, user_id=caller.user_id)


@router.get("/api/v1/llm_outputs", summary="List the caller's LLM outputs")
async def list_outputs(
    caller: CurrentPrincipal, rt: AppDep,
    status: Annotated[OutputStatus | None, Query()] = None,
    template: Filter = None, model: Filter = None,
    feedback: Annotated[Rating | None, Query(description="outputs the caller rated so")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> OutputPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    filters = OutputFilter(status=status, template_name=template, model=model,
                           rating=feedback)
    return await rt.jobs.list_outputs(caller.user_id, filters=filters, cursor=cursor,
                                      limit=limit)


@router.get("/api/v1/llm_outputs/{output_id}", summary="Show one LLM output",
            responses={429: {"model": ErrorBody, "description": "(wait_s) the caller, or "
                             "the server, has as many long polls running as allowed"}})
async def get_output(
        output_id: OutputId, caller: CurrentPrincipal, rt: AppDep,
        wait_s: Annotated[float, Query(
            ge=0, le=MAX_WAIT_S,
            description="Wait up to this many seconds for the output to end (completed, "
                        "failed or cancelled) before answering; 0 answers at once.")] = 0,
) -> OutputRecord:
    """The caller's output: request, prompt, answer, status, usage and timings. With
    ``wait_s``, a long poll: the answer comes when the output ends, or after ``wait_s``
    with the output as it is then (a 429 beyond the caller's long polls at once)."""
    if wait_s > 0:
        with contextlib.suppress(TimeoutError):
            return await rt.jobs.wait(output_id, user_id=caller.user_id, timeout=wait_s)
    return await rt.jobs.get_output(output_id, user_id=caller.user_id)


@router.put("/api/v1/llm_outputs/{output_id}/feedback", summary="Rate an LLM output",
            responses={409: {"model": ErrorBody,
                             "description": "the output has not completed"}})
async def set_feedback(output_id: OutputId, body: FeedbackIn, caller: CurrentPrincipal,
                       rt: AppDep) -> FeedbackRecord:
    """Thumbs up or down, with an optional reason, on a completed output; rating again
    replaces it."""
    return await rt.jobs.set_feedback(output_id, user_id=caller.user_id,
                                      rating=body.rating, reason=body.reason)


@router.get("/api/v1/llm_outputs/{output_id}/feedback",
            summary="Show the caller's rating of an LLM output",
            responses={404: {"model": ErrorBody, "description": "no such output, or the "
                             "caller has not rated it"}})
async def get_feedback(output_id: OutputId, caller: CurrentPrincipal,
                       rt: AppDep) -> FeedbackRecord:
    """The caller's own rating of their output (404 when they have not rated it)."""
    record = await rt.jobs.get_feedback(output_id, user_id=caller.user_id)
    if record is None:
        raise ResourceNotFoundError(f"output {output_id!r} has no rating of user "
                                    f"{caller.user_id!r}; rate it with PUT on this path")
    return record


@router.post("/api/v1/llm_outputs/{output_id}/rerun", summary="Re-run an LLM output's job",
             status_code=status.HTTP_201_CREATED)
async def rerun(output_id: OutputId, caller: CurrentPrincipal, rt: AppDep) -> JobOut:
    """A new job with the identical request, linked to this output."""
    return JobOut.of(await rt.jobs.rerun(output_id, user_id=caller.user_id))


@router.post("/api/v1/llm_outputs/{output_id}/regenerate",
             summary="Regenerate an LLM output with changes",
             status_code=status.HTTP_201_CREATED)
async def regenerate(output_id: OutputId, body: RegenerateIn, caller: CurrentPrincipal,
                     rt: AppDep) -> JobOut:
    """A new job with other variables, model or parameters, linked to this output."""
    parameters = (None if body.parameters is None
                  else body.parameters.model_dump(mode="json", exclude_defaults=True))
    return JobOut.of(await rt.jobs.regenerate(
        output_id, user_id=caller.user_id, variables=body.variables, model=body.model,
        parameters=parameters))


@router.get("/api/admin/llm_outputs/stats", summary="Feedback stats of LLM outputs",
            dependencies=[Depends(get_admin)])
async def feedback_stats(rt: AppDep, template: Filter = None) -> StatsOut:
    """Ups and downs per template version and model (of one template, when given)."""
    return StatsOut(stats=tuple(await rt.jobs.feedback_stats(template_name=template)))


__all__ = ["FeedbackIn", "JobOut", "RegenerateIn", "StatsOut", "router"]
