"""An attempt's error kind and reason are recorded where the error is met — the class name
of the exception, a fixed code for beamish's own words, ``lease`` for the ends leases
decide — and carried to the job's event; never read from the message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from anyio import to_thread

from beamish.jobs import FormatError, JobEvent, PermanentAttemptError
from beamish.jobs.context import JobsContext
from beamish.jobs.event_log import log_fields
from beamish.jobs.execution import run_attempt
from beamish.jobs.formats import parse_json
from beamish.jobs.relay import encode
from beamish.jobs.schedule import classify
from beamish.store.models import NewTemplateVersion
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio


class VARMARKERError(Exception):
    """An exception whose class name a test can look for."""


def test_an_unexpected_error_s_kind_is_its_class_never_its_message() -> None:
    """An exception whose message starts like ``SomethingError: …`` is described by its
    own class: what its message says reaches neither the log line nor other processes."""
    described = classify(ValueError("VARMARKERError: text shaped like a class name"))
    assert (described.kind, described.reason, described.retryable) == (
        "ValueError", None, True)
    assert "VARMARKERError" in str(described)  # the user's own push keeps the message
    event = JobEvent(event="failed", job_id=1, output_id="o1", user_id="ada",
                     status="failed", error=str(described), error_kind=described.kind)
    assert "VARMARKER" not in json.dumps(log_fields(event))
    assert "VARMARKER" not in "".join(encode("node-a", [event]))
    assert classify(VARMARKERError("x")).kind == "VARMARKERError"  # a class, named so


def test_beamish_s_own_errors_carry_their_class_and_a_fixed_reason() -> None:
    """An answer that is not JSON or off the schema is a ``FormatError`` with its reason;
    an attempt error passes through ``classify`` as it is."""
    with pytest.raises(FormatError) as not_json:
        parse_json("VARMARKER")
    with pytest.raises(FormatError) as off_schema:
        parse_json('"VARMARKER"', {"type": "integer"})
    assert [(e.value.kind, e.value.reason) for e in (not_json, off_schema)] == [
        ("FormatError", "answer_not_json"), ("FormatError", "answer_off_schema")]
    assert classify(off_schema.value) is off_schema.value
    assert PermanentAttemptError("x").kind == "PermanentAttemptError"


async def test_a_template_job_without_templates_fails_with_its_reason(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """An attempt of a template job in a job context that has no templates is discarded
    as ``PermanentAttemptError`` with reason ``no_templates``."""
    async with running(tmp_path, fake_llm, enabled=False) as (app, _):
        await app.templates.create_version(NewTemplateVersion(name="digest",
                                                              prompt="Sum up {{ topic }}"))
        await app.jobs.enqueue(template="digest", variables={"topic": "x"}, user_id="ada")
        now = datetime.now(UTC)
        [job] = await app.store.claim_jobs("default", limit=1, leased_by="here", now=now,
                                           lease_until=now + timedelta(seconds=30))
        result = await run_attempt(JobsContext(app.services, app.settings.jobs), job)
    assert (result.state, result.error_kind, result.error_reason) == (
        "discarded", "PermanentAttemptError", "no_templates")


async def test_the_ends_leases_decide_have_kind_lease_and_their_reason(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A job given back at shutdown has its ``retried`` event with reason
    ``released_at_shutdown``; one whose last attempt's lease expired elsewhere has its
    ``failed`` event with ``last_attempt_lost``."""
    fake_llm.script(Fault.hang())
    async with running(tmp_path, fake_llm) as (app, events):
        given_back = await app.jobs.enqueue(prompt="x", user_id="ada")
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 1, WAIT_S)
    [retried] = events.of("retried", given_back.job_id)
    fake_llm.reset()  # the held call is let go
    assert (retried.error_kind, retried.error_reason) == ("lease", "released_at_shutdown")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(elsewhere, fake_llm) as (app, events):
        lost = await app.jobs.enqueue(prompt="y", user_id="ada", max_retries=0,
                                      run_at=later)
        # A process that is gone took it; its lease has run out.
        await app.store.claim_jobs("default", limit=1, leased_by="gone", now=later,
                                   lease_until=datetime.now(UTC) - timedelta(seconds=1))
        [failed] = await events.wait("failed", job_id=lost.job_id)
    assert (failed.error_kind, failed.error_reason) == ("lease", "last_attempt_lost")
