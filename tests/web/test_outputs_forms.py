"""What the outputs pages read from forms and show of an output, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from beamish.store.job_models import OutputFilter, OutputRecord
from beamish.web.errors import OutputFormError
from beamish.web.output_forms import (
    answer_view,
    enqueue_fields,
    feedback_fields,
    list_filters,
    regenerate_fields,
    source_label,
    status_view,
)


def _output(**fields: Any) -> OutputRecord:
    values: dict[str, Any] = {
        "output_id": "o1", "job_id": 1, "user_id": "ada", "variables": {},
        "task_type": "chat", "request": {}, "format": "text", "status": "completed",
        "attempts": 1, "prompt_tokens": 1, "completion_tokens": 2,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    return OutputRecord.model_validate({**values, **fields})


def test_blank_filters_filter_nothing() -> None:
    """An empty query, or blank fields, is every output."""
    assert list_filters({}) == OutputFilter()
    assert list_filters({"status": "", "template": " ", "model": "", "rating": ""}) == (
        OutputFilter())


def test_filters_name_status_template_model_and_rating() -> None:
    """Each given field becomes its filter, names trimmed."""
    assert list_filters({"status": "pending", "template": " greet ", "model": "echo-1",
                         "rating": "down"}) == OutputFilter(
        status="pending", template_name="greet", model="echo-1", rating="down")


@pytest.mark.parametrize(("query", "says"), [
    ({"status": "done"}, "status is one of pending"),
    ({"rating": "meh"}, "feedback is 'up' or 'down'"),
    ({"model": "m" * 256}, "model is at most 255 characters"),
    ({"template": "gr\x00eet"}, r"template holds a NUL character \(U\+0000\)"),
])
def test_a_bad_filter_says_which(query: dict[str, str], says: str) -> None:
    """An unknown status or rating, or an overlong name, is refused, naming the field."""
    with pytest.raises(OutputFormError, match=says):
        list_filters(query)


def test_a_prompt_job_keeps_its_system_prompt_and_format() -> None:
    """A prompt (with a system prompt) is sent as written, in the chosen format."""
    assert enqueue_fields({"prompt": "hi", "system": "be brief", "format": "markdown"}) == {
        "prompt": "hi", "system": "be brief", "format": "markdown"}


def test_a_template_job_takes_its_variables_as_a_json_object() -> None:
    """A template's variables are the JSON object of the variables field (none: empty)."""
    assert enqueue_fields({"template": "greet", "variables": '{"name": "Ada"}'}) == {
        "template": "greet", "variables": {"name": "Ada"}}
    assert enqueue_fields({"template": "greet"})["variables"] == {}


def test_a_task_type_alone_leaves_the_template_to_its_configuration() -> None:
    """With neither template nor prompt, a task type (and its variables) is the job; a
    blank format is left to the template, a chosen one kept."""
    assert enqueue_fields({"task_type": "summarize", "variables": '{"topic": "tides"}',
                           "format": ""}) == {
        "task_type": "summarize", "variables": {"topic": "tides"}}
    assert enqueue_fields({"prompt": "hi", "task_type": "summarize", "format": "json"}) == {
        "prompt": "hi", "task_type": "summarize", "format": "json"}


@pytest.mark.parametrize(("form", "says"), [
    ({}, "a template .*, a prompt, or a task type"),
    ({"template": "greet", "prompt": "hi"}, "not both"),
    ({"prompt": "hi", "variables": '{"a": 1}'}, "leave variables blank"),
    ({"template": "greet", "variables": "{nope"}, r"variables is not JSON \(.*line 1"),
    ({"template": "greet", "variables": "[1]"}, "must be a JSON object .* not a JSON list"),
    ({"prompt": "hi", "format": "yaml"}, "format is one of text, json, markdown, html"),
])
def test_a_bad_enqueue_form_says_what_to_change(form: dict[str, str], says: str) -> None:
    """Neither or both sources, stray variables, bad JSON or format: each says what."""
    with pytest.raises(OutputFormError, match=says):
        enqueue_fields(form)


def test_regenerate_takes_only_what_changed() -> None:
    """Blank fields keep the parent's values; given ones are the changes."""
    assert regenerate_fields({"model": "echo-2", "variables": "", "parameters": ""}) == {
        "model": "echo-2"}
    assert regenerate_fields({"variables": '{"n": 2}', "parameters": '{"temperature": 0}'}) == {
        "variables": {"n": 2}, "parameters": {"temperature": 0}}
    with pytest.raises(OutputFormError, match="change the variables, the model or"):
        regenerate_fields({"model": " "})
    with pytest.raises(OutputFormError, match=r"model holds a NUL character \(U\+0000\)"):
        regenerate_fields({"model": "echo\x00"})


def test_feedback_is_up_or_down_with_a_bounded_reason() -> None:
    """The rating must be up or down; a blank reason is none; a long one is refused."""
    assert feedback_fields({"rating": "up", "reason": " "}, 10) == ("up", None)
    assert feedback_fields({"rating": "down", "reason": "wrong"}, 10) == ("down", "wrong")
    with pytest.raises(OutputFormError, match="thumbs up or thumbs down"):
        feedback_fields({"rating": "sideways"}, 10)
    with pytest.raises(OutputFormError, match="at most 10 characters"):
        feedback_fields({"rating": "up", "reason": "x" * 11}, 10)
    with pytest.raises(OutputFormError, match=r"reason holds a NUL character \(U\+0000\)"):
        feedback_fields({"rating": "up", "reason": "wr\x00ong"}, 10)


def test_a_stored_html_answer_is_sanitized_again_when_shown() -> None:
    """Even a stored row holding a script and an event handler is shown without them."""
    kind, html = answer_view(_output(format="html", parsed_output=(
        '<p>hi <img src="a.png" onerror="alert(1)"></p><script>alert(2)</script>')))
    assert kind == "html"
    assert "onerror" not in html
    assert "<script" not in html
    assert '<img src="a.png">' in html


def test_json_answers_are_pretty_printed_text_and_text_stays_text() -> None:
    """JSON is indented as text; a text answer (markup in it too) is text, unescaped here
    because the template escapes it."""
    assert answer_view(_output(format="json", parsed_output='{"a":[1,2]}')) == (
        "text", json.dumps({"a": [1, 2]}, indent=2))
    assert answer_view(_output(parsed_output="<b>x</b>")) == ("text", "<b>x</b>")
    assert answer_view(_output(status="pending")) == ("none", "")


def test_an_output_is_labelled_by_template_version_or_prompt() -> None:
    """A template output shows its name and version; a raw prompt's shows 'prompt'."""
    assert source_label(_output(template_name="greet", template_version=3)) == "greet v3"
    assert source_label(_output(template_name="greet")) == "greet"
    assert source_label(_output()) == "prompt"


def test_the_status_view_says_whether_to_keep_following() -> None:
    """Pending and processing outputs are not final; the others are."""
    pending = status_view(_output(status="pending"))
    assert pending["final"] is False
    assert pending["model"] == "—"
    done = status_view(_output(status="completed", model="echo-1", latency_ms=12))
    assert done == {"output_id": "o1", "status": "completed", "final": True,
                    "model": "echo-1", "provider": "—", "latency": "12 ms", "attempts": 1}
