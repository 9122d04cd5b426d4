"""What the outputs pages read from forms and show of an output (sans-I/O: plain functions
of strings and records, tested without a server).

* :func:`list_filters` — the list's query (``status``, ``template``, ``model``, ``rating``)
  into an ``OutputFilter``; an unknown status or rating is an ``OutputFormError``.
* :func:`enqueue_fields` — the enqueue form (a ``template`` with ``variables`` as a JSON
  object, or a raw ``prompt``, and a ``format``) into ``Jobs.enqueue``'s keywords.
* :func:`regenerate_fields` — the regenerate form (new ``variables``, ``model`` or
  ``parameters``; a blank field keeps the parent's) into ``Jobs.regenerate``'s keywords.
* :func:`answer_view` — how a page shows an answer: ``markdown`` and ``html`` outputs as the
  stored HTML, sanitized once more here (rows written by older code, or by hand, are not
  trusted to be clean), ``json`` pretty-printed as text, ``text`` as text.
* :func:`status_view` — what the pages' script reads to follow an output live.

Every message says which field was wrong and how; none echoes the field's content.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal, get_args

from markupsafe import Markup

from beamish.jobs.formats import sanitize_html
from beamish.store.job_models import (
    OutputFilter,
    OutputFormat,
    OutputRecord,
    OutputStatus,
    Rating,
)
from beamish.store.text import NUL, NUL_PROBLEM
from beamish.web.errors import OutputFormError

MAX_NAME: Final = 255
"""A template or model name's characters at most (the store's bound)."""

UNFINISHED: Final = frozenset({"pending", "processing"})
"""Statuses an output can still leave (the page follows it while in one)."""

STATUSES: Final[tuple[str, ...]] = get_args(OutputStatus)
FORMATS: Final[tuple[str, ...]] = get_args(OutputFormat)
RATINGS: Final[tuple[str, ...]] = get_args(Rating)


def _name(value: str | None, field: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_NAME:
        raise OutputFormError(f"{field} is at most {MAX_NAME} characters")
    _refuse_nul(value, field)
    return value


def _refuse_nul(value: str, field: str) -> None:
    # PostgreSQL can neither store nor look up text with NUL (beamish.store.text).
    if NUL in value:
        raise OutputFormError(f"{field} {NUL_PROBLEM}")


def list_filters(query: dict[str, str]) -> OutputFilter:
    """The filters of the list's query; a blank field filters nothing."""
    status = (query.get("status") or "").strip() or None
    if status is not None and status not in STATUSES:
        raise OutputFormError(f"status is one of {', '.join(STATUSES)}, or blank for any")
    rating = (query.get("rating") or "").strip() or None
    if rating is not None and rating not in RATINGS:
        raise OutputFormError("feedback is 'up' or 'down', or blank for any")
    return OutputFilter.model_validate({
        "status": status, "rating": rating,
        "template_name": _name(query.get("template"), "template"),
        "model": _name(query.get("model"), "model")})


def json_object(text: str | None, field: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None when blank."""
    if not (text or "").strip():
        return None
    try:
        value = json.loads(text or "")
    except json.JSONDecodeError as error:
        raise OutputFormError(f"{field} is not JSON ({error.msg} at line {error.lineno}, "
                              f"column {error.colno}); write an object such as "
                              '{"name": "Ada"}') from None
    if not isinstance(value, dict):
        raise OutputFormError(f"{field} must be a JSON object such as {{\"name\": \"Ada\"}}, "
                              f"not a JSON {type(value).__name__}")
    return value


def enqueue_fields(form: dict[str, str]) -> dict[str, Any]:
    """``Jobs.enqueue``'s keywords (but ``user_id``) from the enqueue form: a template with
    its variables, a prompt sent as written, or only a task type (with variables) whose
    configuration names the template. A blank format leaves it to the template (else text).
    """
    template = _name(form.get("template"), "template")
    prompt = (form.get("prompt") or "").strip() or None
    task_type = _name(form.get("task_type"), "task type")
    variables = json_object(form.get("variables"), "variables")
    if template is not None and prompt is not None:
        raise OutputFormError("give a template (with its variables) or a prompt: one of "
                              "the two, not both")
    if template is None and prompt is None and task_type is None:
        raise OutputFormError("give a template (with its variables), a prompt, or a task "
                              "type whose configuration names a template")
    if prompt is not None and variables is not None:
        raise OutputFormError("variables fill a template; a prompt is sent as written, so "
                              "leave variables blank or name a template")
    fmt = form.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise OutputFormError(f"format is one of {', '.join(FORMATS)}")
    fields: dict[str, Any] = {"format": fmt, "task_type": task_type}
    if prompt is None:
        fields.update(template=template, variables=variables or {})
    else:
        fields["prompt"] = prompt
        system = (form.get("system") or "").strip()
        if system:
            fields["system"] = system
    return {name: value for name, value in fields.items() if value is not None}


def regenerate_fields(form: dict[str, str]) -> dict[str, Any]:
    """``Jobs.regenerate``'s keywords (but the ids); at least one field must be given."""
    fields: dict[str, Any] = {}
    variables = json_object(form.get("variables"), "variables")
    if variables is not None:
        fields["variables"] = variables
    model = _name(form.get("model"), "model")
    if model is not None:
        fields["model"] = model
    parameters = json_object(form.get("parameters"), "parameters")
    if parameters is not None:
        fields["parameters"] = parameters
    if not fields:
        raise OutputFormError("to regenerate, change the variables, the model or the "
                              "parameters (or use Re-run for the same request)")
    return fields


def feedback_fields(form: dict[str, str], max_reason: int) -> tuple[Rating, str | None]:
    """The rating and the optional reason of the feedback form."""
    rating = form.get("rating")
    if rating not in RATINGS:
        raise OutputFormError("feedback is thumbs up or thumbs down")
    reason = (form.get("reason") or "").strip() or None
    if reason is not None and len(reason) > max_reason:
        raise OutputFormError(f"the reason is at most {max_reason} characters")
    if reason is not None:
        _refuse_nul(reason, "the reason")
    return ("up" if rating == "up" else "down"), reason


AnswerKind = Literal["html", "text", "none"]


def answer_view(output: OutputRecord) -> tuple[AnswerKind, Markup | str]:
    """How the page shows ``output``'s answer: safe HTML, text, or nothing yet."""
    parsed = output.parsed_output
    if parsed is None:
        return "none", ""
    if output.format in ("markdown", "html"):
        return "html", Markup(sanitize_html(parsed))  # sanitized on this line
    if output.format == "json":
        try:
            return "text", json.dumps(json.loads(parsed), indent=2, ensure_ascii=False)
        except json.JSONDecodeError:
            return "text", parsed
    return "text", parsed


def source_label(output: OutputRecord) -> str:
    """The template and version that made ``output``, or ``prompt`` for a raw prompt."""
    if output.template_name is None:
        return "prompt"
    version = "" if output.template_version is None else f" v{output.template_version}"
    return output.template_name + version


def latency_label(output: OutputRecord) -> str:
    """The answer's latency, or a dash before there is one."""
    return "—" if output.latency_ms is None else f"{output.latency_ms} ms"


def when(moment: datetime | None) -> str:
    """A moment as the pages show it (UTC, to the second)."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def status_view(output: OutputRecord) -> dict[str, Any]:
    """What the script that follows an output reads."""
    return {"output_id": output.output_id, "status": output.status,
            "final": output.status not in UNFINISHED, "model": output.model or "—",
            "provider": output.provider or "—", "latency": latency_label(output),
            "attempts": output.attempts}


__all__ = ["FORMATS", "MAX_NAME", "RATINGS", "STATUSES", "UNFINISHED", "answer_view",
           "enqueue_fields", "feedback_fields", "json_object", "latency_label",
           "list_filters", "regenerate_fields", "source_label", "status_view", "when"]
