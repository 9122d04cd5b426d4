"""The job log line: one per event, with the ids, template, model, attempt and latency of
the job, in text and JSON log formats — and never a prompt, a variable's value, an answer,
a feedback reason or an API key, even where the error the user sees quotes them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from beamish.application import Application
from beamish.jobs import JobEvent
from beamish.jobs.event_log import error_code, log_fields
from beamish.llm.settings import ProviderSettings
from beamish.server.logging_json import JsonFormatter
from beamish.store._jobs import LOST_LAST_ATTEMPT
from beamish.store.models import NewTemplateVersion
from tests.jobs._app import Events, openai_answer, settings
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio

KEY = "sk-KEYMARKER-5e1f0a9c2b7d4e6f8a0b"
MARKERS = ("PROMPTMARKER", "VARMARKER", "ANSWERMARKER", "REASONMARKER", "SYSTEMMARKER", KEY)
"""Content that must never reach a job log line (the key is the provider's, in config)."""


@pytest.mark.parametrize("error", [
    'the answer is not JSON: "VARMARKER"',
    "template 'digest' did not render: n: \"VARMARKER\"",
    "BadRequestError: openai_compatible:model-a (HTTP 400) refused VARMARKER",
    "VARMARKERError: text shaped like a class name",
    LOST_LAST_ATTEMPT,
])
def test_an_error_is_logged_by_its_recorded_kind_never_read_from_its_message(
        error: str) -> None:
    """The kind and reason logged are those the event carries; the message is never
    parsed: an error of no recorded kind is ``AttemptError`` with no reason, whatever its
    message looks like (a message shaped like ``<ClassName>Error: …`` included)."""
    event = JobEvent(event="failed", job_id=7, output_id="o7", user_id="ada",
                     status="failed", error=error)
    fields = log_fields(event)
    assert (fields["error_kind"], "error_reason" in fields) == ("AttemptError", False)
    assert error_code(event) == "AttemptError"
    assert all(marker not in json.dumps(fields) for marker in MARKERS)
    kinded = event.model_copy(update={"error_kind": "FormatError",
                                      "error_reason": "answer_not_json"})
    assert (log_fields(kinded)["error_kind"], log_fields(kinded)["error_reason"]) == (
        "FormatError", "answer_not_json")
    assert error_code(kinded) == "FormatError: answer_not_json"


def test_the_log_fields_of_an_event_leave_its_error_message_out() -> None:
    """An event's fields are its ids and numbers, ``event`` first and named ``job_<kind>``;
    the error is its kind and reason."""
    event = JobEvent(event="retried", job_id=7, output_id="o7", user_id="ada",
                     queue="default", status="pending", attempt=2, template="digest",
                     template_version=3, model="model-a", latency_ms=41,
                     error='the answer is not JSON: "VARMARKER"', error_kind="FormatError",
                     error_reason="answer_not_json",
                     retry_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert log_fields(event) == {
        "event": "job_retried", "job_id": 7, "output_id": "o7", "user_id": "ada",
        "queue": "default", "status": "pending", "attempt": 2, "template": "digest",
        "template_version": 3, "model": "model-a", "latency_ms": 41,
        "retry_at": "2030-01-01T00:00:00Z", "error_kind": "FormatError",
        "error_reason": "answer_not_json"}
    assert next(iter(log_fields(event))) == "event"
    assert error_code(event.model_copy(update={"error": None})) is None


def _app(tmp_path: Path, upstream: FakeLLMServer) -> Application:
    """An application whose provider key (in its config) is ``KEY``."""
    base = settings(f"sqlite:///{tmp_path / 'jobs.db'}", upstream)
    llm = base.llm.model_copy(update={"providers": {"openai_compatible": ProviderSettings(
        base_url=upstream.openai_url, api_key=SecretStr(KEY))}})
    return Application(base.model_copy(update={"llm": llm}))


async def _every_kind(app: Application, upstream: FakeLLMServer, events: Events,
                      ) -> dict[str, Any]:
    """Jobs that go through every kind of event; their handles, by name."""
    await app.templates.create_version(NewTemplateVersion(
        name="digest", prompt="Summarise {{ topic }} PROMPTMARKER", system="SYSTEMMARKER",
        variables_schema={"type": "object", "required": ["topic"]}))
    await app.templates.create_version(NewTemplateVersion(
        name="count", prompt="Count to {{ n }} PROMPTMARKER",
        variables_schema={"type": "object", "properties": {"n": {"type": "integer"}}}))
    # Retried (the answer is off the schema, quoting the answer), then completed.
    upstream.script(Fault.raw(openai_answer('{"title": "ANSWERMARKER-off"}')))
    upstream.reply = '{"title": 1, "text": "ANSWERMARKER-on"}'
    good = await app.jobs.enqueue(template="digest", variables={"topic": "VARMARKER-1"},
                                  user_id="ada", format="json",
                                  schema={"properties": {"title": {"type": "integer"}}})
    await events.wait("completed", job_id=good.job_id)
    await app.jobs.set_feedback(good.output_id, user_id="ada", rating="down",
                                reason="REASONMARKER")
    # Failed at once: the variable does not fit the template's schema (quoting it).
    bad = await app.jobs.enqueue(template="count", variables={"n": "VARMARKER-2"},
                                 user_id="ada")
    await events.wait("failed", job_id=bad.job_id)
    # Failed at once: the provider refuses, its message quoting the key and the prompt.
    upstream.script(Fault.error(400, message=f"refused {KEY}: PROMPTMARKER VARMARKER"))
    refused = await app.jobs.enqueue(prompt="PROMPTMARKER-3", system="SYSTEMMARKER",
                                     user_id="ada")
    await events.wait("failed", job_id=refused.job_id)
    later = await app.jobs.enqueue(prompt="PROMPTMARKER-4", user_id="ada",
                                   run_at=datetime.now(UTC) + timedelta(hours=1))
    await app.jobs.cancel(later.job_id, user_id="ada")
    return {"good": good, "bad": bad, "refused": refused, "later": later}


async def test_every_event_logs_one_line_with_its_fields_and_no_content(
        tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """queued, started, retried, completed, failed, feedback and cancelled each log one
    line with the job's ids, user, template, model, attempt and latency where they apply;
    no prompt, variable value, answer, feedback reason or provider key is in any line,
    though the failed events the user gets keep the whole message."""
    monkeypatch.setattr(fake_llm, "openai_key", KEY)
    caplog.set_level(logging.INFO, logger="beamish.jobs")
    app = _app(tmp_path, fake_llm)
    async with app:
        events = Events()
        app.jobs.subscribe(events)
        jobs = await _every_kind(app, fake_llm, events)
    records = [r for r in caplog.records if r.name == "beamish.jobs"
               and r.getMessage().startswith("{")]
    lines = [json.loads(r.getMessage()) for r in records]
    assert len(lines) == len(events.seen)  # one line an event
    for record in records:
        text = logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)
        flat = JsonFormatter().format(record)
        for marker in MARKERS:
            assert marker not in text, (marker, text)
            assert marker not in flat, (marker, flat)

    def line(kind: str, name: str) -> dict[str, Any]:
        matches: list[dict[str, Any]] = [
            x for x in lines if x["event"] == f"job_{kind}" and x["job_id"] == jobs[name].job_id]
        [found] = matches
        assert (found["output_id"], found["user_id"]) == (jobs[name].output_id, "ada")
        return found

    good = [line(kind, "good") for kind in ("queued", "retried", "completed", "feedback")]
    assert all(x["template"] == "digest" for x in good)
    retried, completed = good[1], good[2]
    assert (retried["attempt"], retried["model"], retried["error_kind"],
            retried["error_reason"]) == (1, "model-a", "FormatError", "answer_off_schema")
    assert (completed["attempt"], completed["model"], completed["template_version"]) == (
        2, "model-a", 1)
    assert all(isinstance(x["latency_ms"], int) for x in (retried, completed))
    assert (good[3]["model"], good[3]["status"]) == ("model-a", "completed")
    started = [x for x in lines if x["event"] == "job_started"
               and x["job_id"] == jobs["good"].job_id]
    assert [x["attempt"] for x in started] == [1, 2]
    bad = line("failed", "bad")
    assert (bad["template"], bad["attempt"], bad["error_kind"], bad["error_reason"]) == (
        "count", 1, "PermanentAttemptError", "template_did_not_render")
    refused = line("failed", "refused")
    assert refused["error_kind"] == "FallbacksExhaustedError"  # the class the attempt met
    assert "error_reason" not in refused
    assert (refused["model"], refused["attempt"]) == ("model-a", 1)
    assert line("cancelled", "later")["status"] == "cancelled"
    [bad_event] = events.of("failed", jobs["bad"].job_id)
    assert "VARMARKER-2" in (bad_event.error or "")  # the user's own push keeps it


async def test_json_log_lines_carry_the_event_s_fields_flat(
        tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the JSON log format a job event's line has its fields as fields of the line,
    ``message`` the event's name, not a JSON string inside ``message``."""
    monkeypatch.setattr(fake_llm, "openai_key", KEY)
    caplog.set_level(logging.INFO, logger="beamish.jobs")
    async with _app(tmp_path, fake_llm) as app:
        events = Events()
        app.jobs.subscribe(events)
        handle = await app.jobs.enqueue(prompt="PROMPTMARKER", user_id="ada")
        await events.wait("completed", job_id=handle.job_id)
    [record] = [r for r in caplog.records if r.name == "beamish.jobs"
                and r.getMessage().startswith('{"event":"job_completed"')]
    line = json.loads(JsonFormatter().format(record))
    assert (line["logger"], line["level"], line["message"]) == (
        "beamish.jobs", "INFO", "job_completed")
    assert (line["job_id"], line["output_id"], line["user_id"], line["attempt"],
            line["model"]) == (handle.job_id, handle.output_id, "ada", 1, "model-a")
    assert isinstance(line["latency_ms"], int)
    assert "job_event" not in line
    assert "event" not in line
