"""The outputs pages: a user's job outputs (``beamish.jobs``), one output, and the forms that
start, rate, re-run and regenerate jobs.

The pages call ``Application.jobs`` server-side, as the signed-in user: another user's
output is a 403 page, an unknown one a 404 page. Every form works without a script (a
``POST`` answered with a redirect, or the page again with the error); the pages' script,
``static/outputs.js``, follows unfinished outputs live through ``/outputs/{id}/status``.

Routes (names in brackets, for ``url_for``):

* ``GET /outputs`` [``web_outputs``] — the list, newest first, ``PAGE_SIZE`` a page: filters
  ``status``, ``template``, ``model``, ``rating``; ``cursor`` for the next page. Above it,
  the enqueue form.
* ``POST /outputs`` [``web_outputs_post``] — enqueue a job (a template with variables, or a
  raw prompt, and a format); to the new output's page.
* ``GET /outputs/{output_id}`` [``web_output``] — the output: prompt, answer, status, usage,
  the resolved provider and model with where each came from, feedback, re-run, regenerate.
* ``GET /outputs/{output_id}/status`` [``web_output_status``] — JSON for the script.
* ``POST /outputs/{output_id}/feedback|rerun|regenerate`` — back to the output's page, or to
  the new, linked output's.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from beamish.auth import Principal
from beamish.jobs import (
    InvalidJobError,
    JobLimitError,
    JobNotFoundError,
    OutputForbiddenError,
    OutputNotCompletedError,
)
from beamish.jobs.api import MAX_REASON_CHARS
from beamish.server.api.deps import get_runtime
from beamish.store.job_models import OutputRecord
from beamish.templates import TemplateError
from beamish.web.cookie import signed_in
from beamish.web.errors import FormTooLargeError, OutputFormError
from beamish.web.output_forms import (
    FORMATS,
    RATINGS,
    STATUSES,
    answer_view,
    enqueue_fields,
    feedback_fields,
    latency_label,
    list_filters,
    regenerate_fields,
    source_label,
    status_view,
    when,
)
from beamish.web.pages import Endpoint, _to_sign_in, render

PAGE_SIZE: Final = 25
MAX_OUTPUT_FORM_BYTES: Final = 256 * 1024
"""An outputs form's body at most: room for a long prompt (the job's own bounds, ``[jobs]
max_prompt_chars`` and ``max_variables_bytes``, are checked after)."""

MAX_FORM_FIELDS: Final = 16

_OUTPUT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_CURSOR: Final = 512


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each), bounded."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OUTPUT_FORM_BYTES:
            raise FormTooLargeError(f"an outputs form is at most {MAX_OUTPUT_FORM_BYTES} "
                                    "bytes; shorten the prompt or the variables")
    try:
        fields = parse_qs(bytes(body).decode("utf-8", errors="replace"),
                          max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than allowed: no form of these pages has that many
        raise FormTooLargeError(f"an outputs form has at most {MAX_FORM_FIELDS} fields"
                                ) from None
    return {name: values[0] for name, values in fields.items()}


def _error_page(request: Request, status: int, message: str,
                principal: Principal) -> Response:
    """A page saying what went wrong, under the nav of a signed-in user."""
    return render(request, "error.html", status=status, principal=principal, page="outputs",
                  status_code=status, message=message)


def _url(request: Request, route: str, **params: str) -> str:
    return str(request.url_for(route, **params).path)


def _output_id(request: Request) -> str | None:
    output_id: str = request.path_params["output_id"]
    return output_id if _OUTPUT_ID.fullmatch(output_id) else None


async def _owned(request: Request, principal: Principal,
                 ) -> OutputRecord | Response:
    """The user's output named in the path, or the error page that says why not."""
    output_id = _output_id(request)
    if output_id is None:
        return _error_page(request, 404, "There is no output with that id.", principal)
    try:
        return await get_runtime(request).jobs.get_output(output_id, user_id=principal.user_id)
    except JobNotFoundError:
        return _error_page(request, 404, "There is no output with that id.", principal)
    except OutputForbiddenError:
        return _error_page(request, 403, "This output belongs to another user; you can open "
                          "only your own outputs.", principal)


# --- the list and the enqueue form -------------------------------------------------------


async def outputs_page(request: Request) -> Response:
    """The user's outputs, newest first, filtered, a page at a time."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    return await _list(request, principal, form={}, error=None)


async def _list(request: Request, principal: Principal, *, form: dict[str, str],
                error: str | None, status: int = 200) -> Response:
    query = dict(request.query_params)
    cursor = query.get("cursor") or None
    try:
        if cursor is not None and len(cursor) > _MAX_CURSOR:
            raise OutputFormError("that page link is broken; start from the newest outputs")
        filters = list_filters(query)
        page = await get_runtime(request).jobs.list_outputs(
            principal.user_id, filters=filters, cursor=cursor, limit=PAGE_SIZE)
    except (OutputFormError, InvalidJobError) as problem:
        return _error_page(request, 400, f"These filters cannot be used: {problem}",
                          principal)
    kept = {k: query[k] for k in ("status", "template", "model", "rating") if query.get(k)}
    base = _url(request, "web_outputs")
    older = None if page.next_cursor is None else (
        base + "?" + urlencode({**kept, "cursor": page.next_cursor}))
    newest = None if cursor is None else base + ("?" + urlencode(kept) if kept else "")
    rows = [_row(request, output) for output in page.outputs]
    return render(request, "outputs.html", status=status, principal=principal,
                  page="outputs", rows=rows, filters=kept, statuses=STATUSES,
                  formats=FORMATS, ratings=RATINGS, older=older, newest=newest,
                  form=form, error=error, filtered=bool(kept))


def _row(request: Request, output: OutputRecord) -> dict[str, Any]:
    return {"id": output.output_id, "href": _url(request, "web_output",
                                                 output_id=output.output_id),
            "status_url": _url(request, "web_output_status", output_id=output.output_id),
            "source": source_label(output), "model": output.model or "—",
            "status": output.status, "created": when(output.created_at),
            "latency": latency_label(output), "relation": output.relation}


async def enqueue(request: Request) -> Response:
    """Start a job from the form; to its output's page, or the list with the error."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    form = await _form(request)
    try:
        fields = enqueue_fields(form)
        handle = await get_runtime(request).jobs.enqueue(user_id=principal.user_id,
                                                         check_template=True, **fields)
    except (OutputFormError, InvalidJobError, TemplateError) as problem:
        return await _list(request, principal, form=form, status=400,
                           error=f"The job was not started: {problem}")
    except JobLimitError as problem:
        return await _list(request, principal, form=form, status=429,
                           error=f"The job was not started: {problem}")
    return RedirectResponse(_url(request, "web_output", output_id=handle.output_id),
                            status_code=303)


# --- one output --------------------------------------------------------------------------


async def output_page(request: Request) -> Response:
    """One output, with its prompt, answer, details and the forms that act on it."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    found = await _owned(request, principal)
    if isinstance(found, Response):
        return found
    return await _show(request, principal, found, error=None)


async def _show(request: Request, principal: Principal, output: OutputRecord, *,
                error: str | None, status: int = 200) -> Response:
    runtime = get_runtime(request)
    feedback = await runtime.jobs.get_feedback(output.output_id, user_id=principal.user_id)
    kind, answer = answer_view(output)
    parent = None if output.parent_output_id is None else {
        "id": output.parent_output_id,
        "href": _url(request, "web_output", output_id=output.parent_output_id)}
    return render(
        request, "output.html", status=status, principal=principal, page="outputs",
        output=output, source=source_label(output), answer_kind=kind, answer=answer,
        created=when(output.created_at), started=when(output.started_at),
        completed=when(output.completed_at), latency=latency_label(output),
        prompt=output.prompt or output.request.get("prompt"),
        system=output.system_prompt or output.request.get("system"),
        variables=_pretty(output.variables) if output.template_name else None,
        parameters=_pretty(output.parameters) if output.parameters else None,
        provenance=sorted((output.provenance or {}).items()), parent=parent,
        feedback=feedback, error=error, max_reason=MAX_REASON_CHARS,
        status_url=_url(request, "web_output_status", output_id=output.output_id),
        self_url=_url(request, "web_output", output_id=output.output_id))


def _pretty(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


async def output_status(request: Request) -> Response:
    """The output's status as JSON, for the script that follows it."""
    principal = signed_in(request)
    if principal is None:
        return _json_error(401, "unauthorized", "not signed in; sign in again")
    output_id = _output_id(request)
    try:
        if output_id is None:
            raise JobNotFoundError("no output with that id")
        output = await get_runtime(request).jobs.get_output(output_id,
                                                            user_id=principal.user_id)
    except JobNotFoundError:
        return _json_error(404, "not_found", "no output with that id")
    except OutputForbiddenError:
        return _json_error(403, "forbidden", "this output belongs to another user")
    return JSONResponse(status_view(output), headers={"cache-control": "no-store"})


def _json_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, "code": None,
                                   "details": None}}, status_code=status)


async def feedback(request: Request) -> Response:
    """Rate the output up or down (again: the rating is replaced); back to its page."""
    return await _act(request, "feedback")


async def rerun(request: Request) -> Response:
    """The same request again, as a new output linked to this one; to the new output."""
    return await _act(request, "rerun")


async def regenerate(request: Request) -> Response:
    """This request with new variables, model or parameters, as a new linked output."""
    return await _act(request, "regenerate")


async def _act(request: Request, action: str) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    found = await _owned(request, principal)
    if isinstance(found, Response):
        return found
    form = await _form(request)
    jobs = get_runtime(request).jobs
    user_id, output_id = principal.user_id, found.output_id
    try:
        if action == "feedback":
            rating, reason = feedback_fields(form, MAX_REASON_CHARS)
            await jobs.set_feedback(output_id, user_id=user_id, rating=rating, reason=reason)
            target = output_id
        elif action == "rerun":
            target = (await jobs.rerun(output_id, user_id=user_id)).output_id
        else:
            target = (await jobs.regenerate(output_id, user_id=user_id,
                                            **regenerate_fields(form))).output_id
    except (OutputFormError, InvalidJobError, JobLimitError, OutputNotCompletedError,
            TemplateError) as problem:
        status = (429 if isinstance(problem, JobLimitError)
                  else 409 if isinstance(problem, OutputNotCompletedError) else 400)
        return await _show(request, principal, found, status=status,
                           error=f"That did not work: {problem}")
    return RedirectResponse(_url(request, "web_output", output_id=target), status_code=303)


def routes() -> list[tuple[str, Endpoint, list[str], str]]:
    """The outputs pages' routes, as ``pages.router`` lists them."""
    return [
        ("/outputs", outputs_page, ["GET"], "web_outputs"),
        ("/outputs", enqueue, ["POST"], "web_outputs_post"),
        ("/outputs/{output_id}", output_page, ["GET"], "web_output"),
        ("/outputs/{output_id}/status", output_status, ["GET"], "web_output_status"),
        ("/outputs/{output_id}/feedback", feedback, ["POST"], "web_output_feedback"),
        ("/outputs/{output_id}/rerun", rerun, ["POST"], "web_output_rerun"),
        ("/outputs/{output_id}/regenerate", regenerate, ["POST"], "web_output_regenerate"),
    ]


__all__ = ["MAX_OUTPUT_FORM_BYTES", "PAGE_SIZE", "routes"]
