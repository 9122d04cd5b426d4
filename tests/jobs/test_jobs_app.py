"""Jobs through ``Application.jobs`` against a real fake upstream: runs, retries, failures,
cancellation, ownership, re-runs and the events and log lines of each."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anyio import to_thread

from beamish.application import Application
from beamish.jobs import (
    InvalidJobError,
    JobHandle,
    JobLimitError,
    JobNotFoundError,
    JobsNotRunningError,
    OutputForbiddenError,
    WaitLimitError,
)
from beamish.jobs.context import ENQUEUER, JOBS_SUP
from beamish.runtime import KILL, exit
from beamish.runtime.supervisor import which_children
from beamish.store import NotFoundError
from beamish.store._jobs import LOST_LAST_ATTEMPT, RELEASED
from beamish.store.job_models import OutputRecord
from beamish.store.models import NewTemplateVersion
from tests.jobs._app import WAIT_S, openai_answer, running
from tests.jobs._reads import Reads
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault

pytestmark = pytest.mark.anyio


async def test_a_prompt_job_completes_with_its_output_usage_and_events(
        tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """A raw prompt runs once: output completed with the answer, model, tokens and
    provenance; one usage row; queued, started, completed events and one JSON log line
    each, without the prompt."""
    caplog.set_level(logging.INFO, logger="beamish.jobs")
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="secret words", user_id="ada")
        assert (handle.status, handle.created) == ("pending", True)
        assert handle.estimated_completion >= datetime.now(UTC) - timedelta(seconds=1)
        await events.wait("completed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id, user_id="ada")
        usage = await app.store.usage_totals(user_id="ada")
    assert events.kinds(handle.job_id) == ["queued", "started", "completed"]
    assert (output.status, output.raw_response, output.parsed_output, output.model) == (
        "completed", "you said: secret words", "you said: secret words", "model-a")
    assert (output.attempts, output.prompt_tokens, output.completion_tokens) == (1, 2, 4)
    assert output.provenance is not None
    assert output.provenance["model"] == "system_default"
    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens) == (1, 2, 4)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "beamish.jobs"]
    assert [line["event"] for line in lines] == ["job_queued", "job_started", "job_completed"]
    assert all(line["job_id"] == handle.job_id and line["user_id"] == "ada" for line in lines)
    assert "secret" not in caplog.text


async def test_an_answer_that_is_not_json_is_retried_with_the_reason(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A json job whose first answer does not parse is retried; the second fits the schema
    and completes; each attempt's usage is recorded once."""
    fake_llm.script(Fault.raw(openai_answer("certainly! here it is")))
    fake_llm.reply = '{"title": "ok"}'
    schema = {"type": "object", "required": ["title"]}
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="title?", user_id="ada", format="json",
                                        schema=schema)
        await events.wait("completed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id)
        usage = await app.store.usage_totals(user_id="ada")
    [retried] = events.of("retried", handle.job_id)
    assert retried.error is not None
    assert "not JSON" in retried.error
    assert events.kinds(handle.job_id) == ["queued", "started", "retried", "started",
                                           "completed"]
    assert (output.status, output.attempts, json.loads(output.parsed_output or "")) == (
        "completed", 2, {"title": "ok"})
    assert usage.requests == 2


async def test_an_answer_off_the_schema_fails_once_retries_run_out(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """JSON that never fits the schema is retried up to max_retries, then the output fails
    naming the schema's complaint."""
    fake_llm.reply = '{"other": 1}'
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada", format="json",
                                        schema={"required": ["title"]}, max_retries=2)
        [failed] = await events.wait("failed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id)
    assert len(events.of("retried", handle.job_id)) == 2
    assert (output.status, output.attempts) == ("failed", 3)
    assert output.error is not None
    assert '"title" is a required property' in output.error
    assert failed.error == output.error


async def test_a_refused_request_fails_at_once_without_retry(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A 400 from the provider is permanent: the output fails on the first attempt, and
    the failed call's usage is recorded as an error."""
    fake_llm.script(Fault.error(400))
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada")
        await events.wait("failed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id)
        usage = await app.store.usage_totals(user_id="ada")
    assert (output.status, output.attempts) == ("failed", 1)
    assert output.error is not None
    assert "openai_compatible:model-a (HTTP 400)" in output.error
    assert "fake server" not in output.error  # the upstream's own words stay out
    assert (usage.requests, usage.errors) == (1, 1)


async def test_a_provider_outage_is_retried_until_it_answers(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """5xx and 429 answers are retried (with the job's own backoff over the queue's); the
    job completes on the answer after them."""
    fake_llm.script(Fault.error(503), Fault.error(429))
    async with running(tmp_path, fake_llm, backoff_base_s=3600.0) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada", backoff_base_s=0.001)
        await events.wait("completed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id)
    assert (output.status, output.attempts) == ("completed", 3)
    assert len(events.of("retried", handle.job_id)) == 2


async def test_formats_store_sanitized_html(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A markdown answer is stored as HTML with its raw HTML escaped; an html answer is
    sanitized (the event handler dropped)."""
    fake_llm.reply = "**bold** <img src=x onerror=alert(1)>"
    async with running(tmp_path, fake_llm) as (app, events):
        markdown = await app.jobs.enqueue(prompt="x", user_id="ada", format="markdown")
        html = await app.jobs.enqueue(prompt="x", user_id="ada", format="html")
        await events.wait("completed", count=2)
        rendered = await app.jobs.get_output(markdown.output_id)
        cleaned = await app.jobs.get_output(html.output_id)
    assert rendered.parsed_output is not None
    assert "<strong>bold</strong>" in \
        rendered.parsed_output
    assert "<img" not in rendered.parsed_output
    assert cleaned.parsed_output == '**bold** <img src="x">'


async def test_cancelling_a_scheduled_job_means_it_never_runs(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A scheduled job cancelled before it is due is cancelled with its output and never
    reaches the provider."""
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada",
                                        run_at=datetime.now(UTC) + timedelta(hours=1))
        assert handle.state == "scheduled"
        output = await app.jobs.cancel(handle.job_id, user_id="ada")
    assert output.status == "cancelled"
    assert events.kinds(handle.job_id) == ["queued", "cancelled"]
    assert fake_llm.requests == []


async def test_cancelling_a_running_job_stops_its_worker(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A job whose call hangs is cancelled in its worker, which then runs the next job."""
    fake_llm.script(Fault.hang())
    async with running(tmp_path, fake_llm, queues={"default": {"concurrency": 1}}) as (
            app, events):
        stuck = await app.jobs.enqueue(prompt="x", user_id="ada")
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 1, WAIT_S)
        output = await app.jobs.cancel(stuck.job_id)
        after = await app.jobs.enqueue(prompt="y", user_id="ada")
        await events.wait("completed", job_id=after.job_id)
        final = await app.jobs.get_output(stuck.output_id)
    assert output.status == final.status == "cancelled"
    assert "completed" not in events.kinds(stuck.job_id)


async def test_users_act_only_on_their_own_outputs(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Another user's output or job is refused for reading, rating, re-running and
    cancelling; an unknown id is not found."""
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada")
        await events.wait("completed", job_id=handle.job_id)
        with pytest.raises(OutputForbiddenError):
            await app.jobs.get_output(handle.output_id, user_id="eve")
        with pytest.raises(OutputForbiddenError):
            await app.jobs.set_feedback(handle.output_id, user_id="eve", rating="down")
        with pytest.raises(OutputForbiddenError):
            await app.jobs.rerun(handle.output_id, user_id="eve")
        with pytest.raises(OutputForbiddenError):
            await app.jobs.cancel(handle.job_id, user_id="eve")
        with pytest.raises(JobNotFoundError):
            await app.jobs.get_output("nope", user_id="ada")
        assert (await app.jobs.list_outputs("eve")).outputs == ()


async def test_rerun_and_regenerate_make_linked_jobs(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A re-run repeats the request; a regeneration changes the model; both link to the
    parent; feedback on each is counted per model."""
    async with running(tmp_path, fake_llm) as (app, events):
        parent = await app.jobs.enqueue(prompt="x", user_id="ada", format="markdown")
        await events.wait("completed", job_id=parent.job_id)
        rerun = await app.jobs.rerun(parent.output_id, user_id="ada")
        regenerated = await app.jobs.regenerate(parent.output_id, user_id="ada",
                                                model="model-b")
        await events.wait("completed", count=3)
        first = await app.jobs.get_output(parent.output_id)
        again = await app.jobs.get_output(rerun.output_id)
        other = await app.jobs.get_output(regenerated.output_id)
        await app.jobs.set_feedback(again.output_id, user_id="ada", rating="up")
        await app.jobs.set_feedback(other.output_id, user_id="ada", rating="down",
                                    reason="worse")
        stats = await app.jobs.feedback_stats()
    assert (again.parent_output_id, again.relation) == (parent.output_id, "rerun")
    assert (other.parent_output_id, other.relation) == (parent.output_id, "regenerate")
    assert (again.format, again.model, again.prompt) == (first.format, "model-a", "x")
    assert other.model == "model-b"
    assert {(s.model, s.up, s.down) for s in stats} == {("model-a", 1, 0), ("model-b", 0, 1)}
    assert len(events.of("feedback")) == 2


async def test_a_unique_key_gives_the_running_job_back(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Enqueueing a key whose job is still pending returns that job, not a new one."""
    async with running(tmp_path, fake_llm) as (app, _):
        later = datetime.now(UTC) + timedelta(hours=1)
        first = await app.jobs.enqueue(prompt="x", user_id="ada", unique_key="k", run_at=later)
        second = await app.jobs.enqueue(prompt="y", user_id="ada", unique_key="k")
    assert (second.job_id, second.output_id, second.created) == (
        first.job_id, first.output_id, False)


async def test_a_template_job_renders_through_the_applications_templates(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A template job renders through app.templates, no renderer handed over by the user
    (version and system prompt stored); one whose variables do not fit fails at once;
    without a renderer, template jobs fail saying so."""
    async with running(tmp_path, fake_llm) as (app, events):
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Summarise {{ topic }}", system="Be brief.",
            variables_schema={"type": "object", "required": ["topic"]}))
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Summarise {{ topic }} in detail", system="Be brief.",
            task_type="summarize"))
        good = await app.jobs.enqueue(template="digest", variables={"topic": "tides"},
                                      user_id="ada")
        bad = await app.jobs.enqueue(template="digest", variables={}, user_id="ada")
        await events.wait("completed", job_id=good.job_id)
        await events.wait("failed", job_id=bad.job_id)
        app.jobs.set_renderer(None)
        bare = await app.jobs.enqueue(template="digest", variables={"topic": "x"},
                                      user_id="ada")
        await events.wait("failed", job_id=bare.job_id)
        outputs = {o.output_id: o for o in (await app.jobs.list_outputs("ada")).outputs}
    assert "templates" in (outputs[bare.output_id].error or "")
    rendered = outputs[good.output_id]
    assert (rendered.template_name, rendered.template_version, rendered.prompt,
            rendered.system_prompt, rendered.task_type) == (
        "digest", 2, "Summarise tides in detail", "Be brief.", "summarize")
    assert "did not render" in (outputs[bad.output_id].error or "")
    assert outputs[bad.output_id].attempts == 1


@pytest.mark.parametrize(("fields", "names"), [
    ({"prompt": "x", "template": "t"}, "either template"),
    ({}, "no template and no prompt, and the configuration of task type 'chat'"),
    ({"template_label": "staging"}, "give them with template"),
    ({"prompt": "x", "template_version": 2}, "give them with template"),
    ({"prompt": "x", "queue": "urgent"}, "queue 'urgent'"),
    ({"prompt": "x" * 300_000}, "max_prompt_chars"),
    ({"prompt": "x", "format": "json", "schema": {"type": 12}}, "schema"),
    ({"prompt": "x", "format": "text", "schema": {"type": "object"}}, "format='json'"),
    ({"prompt": "x", "priority": 5000}, "priority"),
    ({"prompt": "x", "run_at": datetime(2030, 1, 1)}, "timezone-aware"),
    ({"prompt": "x", "backoff_base_s": 10.0, "backoff_cap_s": 5.0},
     "backoff_base_s must be at most backoff_cap_s"),
    ({"prompt": "x", "backoff_base_s": 0.0}, "backoff_base_s"),
    ({"template": "t", "template_label": "a", "template_version": 1}, "not both"),
    ({"prompt": "x", "backoff_base_s": 600.0}, r"above backoff_cap_s \(300"),
    ({"prompt": "x", "backoff_cap_s": 2 * 86_400.0}, "backoff_cap_s"),
])
async def test_a_bad_job_is_refused_naming_the_problem(
        tmp_path: Path, fake_llm: FakeLLMServer, fields: dict[str, Any], names: str) -> None:
    """Bad arguments are an InvalidJobError that says what was wrong; nothing is queued."""
    async with running(tmp_path, fake_llm) as (app, _):
        with pytest.raises(InvalidJobError, match=names):
            await app.jobs.enqueue(user_id="ada", **fields)
        assert (await app.jobs.list_outputs("ada")).outputs == ()


async def test_a_schema_without_a_format_means_json(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """enqueue with a schema and no format is a json job, as a JobSubmission's is: its
    answer is checked as JSON against the schema."""
    fake_llm.script(Fault.raw(openai_answer('{"title": "T"}')))
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(user_id="ada", prompt="x", schema={
            "type": "object", "required": ["title"]})
        await events.wait("completed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id, user_id="ada")
    assert (output.format, output.parsed_output) == ("json", '{"title":"T"}')


async def test_a_job_cancelled_elsewhere_is_stopped_at_its_next_lease_renewal(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A running job cancelled in the database by another process is stopped in its worker
    when renewing its lease fails, and the worker goes on to the next job."""
    fake_llm.script(Fault.hang())
    async with running(tmp_path, fake_llm, lease_s=0.3,
                       queues={"default": {"concurrency": 1}}) as (app, events):
        stuck = await app.jobs.enqueue(prompt="x", user_id="ada")
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 1, WAIT_S)
        assert await app.store.cancel_job(stuck.job_id) is not None  # not through app.jobs
        after = await app.jobs.enqueue(prompt="y", user_id="ada")
        await events.wait("completed", job_id=after.job_id)
        output = await app.jobs.get_output(stuck.output_id)
    assert output.status == "cancelled"
    assert events.kinds(stuck.job_id) == ["queued", "started"]


async def test_stopping_gives_running_jobs_back_to_run_again_at_once(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """An application stopped mid-job gives the lease back (the job is due again, not
    waiting for the lease to expire); the next start completes it on attempt 2."""
    fake_llm.script(Fault.hang())
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada")
        assert await to_thread.run_sync(fake_llm.wait_for_requests, 1, WAIT_S)
    [retried] = events.of("retried", handle.job_id)  # the job's end here has its event
    assert (retried.status, retried.attempt, retried.error) == ("pending", 1, RELEASED)
    assert retried.retry_at is not None
    fake_llm.reset()  # the held call is let go; the next ones answer
    async with running(tmp_path, fake_llm, enabled=False) as (app, _):
        released = await app.store.get_job(handle.job_id)
        pending = await app.jobs.get_output(handle.output_id)
    assert (released.state, released.leased_by, released.attempt) == ("retryable", None, 1)
    assert pending.status == "pending"
    async with running(tmp_path, fake_llm) as (app, events):
        [completed] = await events.wait("completed", job_id=handle.job_id)
    assert completed.attempt == 2


async def test_a_job_lost_on_its_last_attempt_ends_with_a_failed_event(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A job whose last attempt's worker died (its lease expired) is discarded by the next
    claim, and that end is a ``failed`` event with the reason, as any other failure."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm) as (app, events):
        handle = await app.jobs.enqueue(prompt="x", user_id="ada", max_retries=0,
                                        run_at=later)
        # A process that is gone took it; its lease has run out.
        [taken] = await app.store.claim_jobs(
            "default", limit=1, leased_by="gone", now=later,
            lease_until=datetime.now(UTC) - timedelta(seconds=1))
        [failed] = await events.wait("failed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id)
    assert (failed.status, failed.attempt, failed.output_id, failed.error) == (
        "failed", taken.attempt, handle.output_id, LOST_LAST_ATTEMPT)
    assert (output.status, output.error) == ("failed", LOST_LAST_ATTEMPT)
    assert events.kinds(handle.job_id) == ["queued", "failed"]


async def test_jobs_are_reached_from_tasks_outside_the_application_s_context(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A task that did not enter the application (a web request's, another node's) can
    enqueue and cancel: the API finds this application's actors, not the context's."""
    async with running(tmp_path, fake_llm) as (app, events):

        async def from_elsewhere() -> int:
            handle = await app.jobs.enqueue(prompt="x", user_id="ada")
            return handle.job_id

        task = asyncio.get_running_loop().create_task(from_elsewhere(),
                                                      context=contextvars.Context())
        job_id = await task
        await events.wait("completed", job_id=job_id)


async def test_finished_jobs_are_pruned_and_their_outputs_kept(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Pruning deletes jobs finished longer ago than prune_after_s; outputs stay."""
    async with running(tmp_path, fake_llm, prune_after_s=1e-6) as (app, events):
        done = await app.jobs.enqueue(prompt="x", user_id="ada")
        waiting = await app.jobs.enqueue(prompt="x", user_id="ada",
                                         run_at=datetime.now(UTC) + timedelta(hours=1))
        await events.wait("completed", job_id=done.job_id)
        assert await app.jobs.prune() == 1
        with pytest.raises(NotFoundError):
            await app.store.get_job(done.job_id)
        assert (await app.store.get_job(waiting.job_id)).state == "scheduled"
        output = await app.jobs.get_output(done.output_id, user_id="ada")
    assert output.status == "completed"


async def test_a_user_at_the_unfinished_job_cap_is_refused_until_one_finishes(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Beyond max_unfinished_per_user pending or running jobs, enqueue is a JobLimitError
    (also within one batch of concurrent enqueues); other users are not held back."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm, max_unfinished_per_user=3) as (app, _):
        results = await asyncio.gather(*(
            app.jobs.enqueue(prompt="x", user_id="ada", run_at=later) for _ in range(5)),
            return_exceptions=True)
        refused = [r for r in results if isinstance(r, JobLimitError)]
        assert len(refused) == 2
        assert "max_unfinished_per_user" in str(refused[0])
        await app.jobs.enqueue(prompt="x", user_id="bob", run_at=later)
        first = next(r for r in results if not isinstance(r, BaseException))
        await app.jobs.cancel(first.job_id)
        await app.jobs.enqueue(prompt="x", user_id="ada", run_at=later)
        with pytest.raises(JobLimitError):
            await app.jobs.enqueue(prompt="x", user_id="ada", run_at=later)


async def test_a_unique_key_held_by_the_users_own_job_is_answered_even_at_the_cap(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """At max_unfinished_per_user, enqueueing a key the user's pending job holds creates
    nothing, so it answers that job (also twice in one batch) instead of a JobLimitError;
    a new key, or no key, is still refused."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm, max_unfinished_per_user=2) as (app, _):
        await app.jobs.enqueue(prompt="x", user_id="ada", run_at=later)
        held = await app.jobs.enqueue(prompt="x", user_id="ada", run_at=later,
                                      unique_key="k")
        again = await asyncio.gather(*(
            app.jobs.enqueue(prompt="y", user_id="ada", unique_key="k") for _ in range(2)))
        for key in ("other", None):
            with pytest.raises(JobLimitError):
                await app.jobs.enqueue(prompt="z", user_id="ada", run_at=later,
                                       unique_key=key)
    assert {(h.job_id, h.created) for h in again} == {(held.job_id, False)}


async def test_a_unique_key_repeated_in_one_batch_counts_once_against_the_cap(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """With room for one more job, a batch of enqueues sharing one new key creates that job
    once and answers it to each of them; none is refused."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm, max_unfinished_per_user=1) as (app, _):
        handles = await asyncio.gather(*(
            app.jobs.enqueue(prompt="x", user_id="ada", run_at=later, unique_key="k")
            for _ in range(3)))
    assert len({h.job_id for h in handles}) == 1
    assert sorted(h.created for h in handles) == [False, False, True]


async def test_wait_returns_the_output_once_it_has_ended(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """``wait`` answers with the completed output; it refuses another user's output; an
    output that does not end within the timeout is a TimeoutError."""
    async with running(tmp_path, fake_llm) as (app, _events):
        handle = await app.jobs.enqueue(prompt="wait for me", user_id="ada")
        output = await app.jobs.wait(handle.output_id, user_id="ada", timeout=WAIT_S)
        assert (output.status, output.raw_response) == ("completed", "you said: wait for me")
        with pytest.raises(OutputForbiddenError):
            await app.jobs.wait(handle.output_id, user_id="eve", timeout=WAIT_S)
        later = await app.jobs.enqueue(prompt="x", user_id="ada",
                                       run_at=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(TimeoutError):
            await app.jobs.wait(later.output_id, user_id="ada", timeout=0)


async def _waiting_on_a_pending_output(
        app: Application, monkeypatch: pytest.MonkeyPatch,
) -> tuple[JobHandle, Reads, asyncio.Future[OutputRecord]]:
    """ada's job scheduled an hour ahead, and a wait on its output that has read it pending
    once; the store's reads counted from there."""
    handle = await app.jobs.enqueue(prompt="x", user_id="ada",
                                    run_at=datetime.now(UTC) + timedelta(hours=1))
    reads = Reads(monkeypatch, app.store)
    waiting = asyncio.ensure_future(app.jobs.wait(handle.output_id, user_id="ada",
                                                  timeout=WAIT_S))
    await reads.reached(1)
    return handle, reads, waiting


async def test_wait_is_woken_by_the_event_that_ends_its_output(
        tmp_path: Path, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait whose output was pending at its first read is woken by the job's end event:
    it reads once more only, though reads are due only every hour."""
    async with running(tmp_path, fake_llm, poll_interval_s=3600.0) as (app, _events):
        handle, reads, waiting = await _waiting_on_a_pending_output(app, monkeypatch)
        await app.jobs.cancel(handle.job_id)
        output = await waiting
    assert (output.status, reads.count) == ("cancelled", 3)  # wait's two, cancel's one


async def test_wait_finds_an_end_no_event_told_of(
        tmp_path: Path, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output ended where no event reaches this process (here: cancelled in the store
    directly, as another process without events would), after ``wait`` read it pending, is
    found by ``wait``'s next reads."""
    async with running(tmp_path, fake_llm, poll_interval_s=0.05) as (app, events):
        handle, reads, waiting = await _waiting_on_a_pending_output(app, monkeypatch)
        await app.store.cancel_job(handle.job_id)
        output = await waiting
    assert output.status == "cancelled"
    assert reads.count >= 2
    assert events.kinds(handle.job_id) == ["queued"]


async def test_waits_are_bounded_per_user_and_per_process(
        tmp_path: Path, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past max_waits_per_user a user's next wait is a WaitLimitError, past max_waits
    anyone's; a wait that ended frees its place."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm, max_waits_per_user=1, max_waits=2) as (app, _):
        ada = await app.jobs.enqueue(prompt="x", user_id="ada", run_at=later)
        bob = await app.jobs.enqueue(prompt="x", user_id="bob", run_at=later)
        reads = Reads(monkeypatch, app.store)
        ada_waits = asyncio.ensure_future(app.jobs.wait(ada.output_id, user_id="ada"))
        await reads.reached(1)
        with pytest.raises(WaitLimitError, match="max_waits_per_user"):
            await app.jobs.wait(ada.output_id, user_id="ada")
        bob_waits = asyncio.ensure_future(app.jobs.wait(bob.output_id, user_id="bob"))
        await reads.reached(2)
        with pytest.raises(WaitLimitError, match=r"\[jobs\] max_waits\)"):
            await app.jobs.wait(ada.output_id)
        for job_id in (ada.job_id, bob.job_id):
            await app.jobs.cancel(job_id)
        ended = [await ada_waits, await bob_waits]
        again = await app.jobs.wait(ada.output_id, user_id="ada", timeout=WAIT_S)
    assert [o.status for o in (*ended, again)] == ["cancelled"] * 3


async def test_an_enqueue_whose_writer_dies_mid_write_is_told_so(
        tmp_path: Path, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller waiting on the enqueuer's group commit gets JobsNotRunningError when the
    enqueuer is killed mid-write, instead of waiting for ever; the restarted enqueuer
    serves the next enqueue."""
    async with running(tmp_path, fake_llm, enabled=False) as (app, _events):
        writing = asyncio.Event()
        real = app.store.enqueue_jobs

        async def stuck(jobs: Any) -> Any:
            writing.set()
            await asyncio.Event().wait()  # a write that never returns
            return await real(jobs)

        monkeypatch.setattr(app.store, "enqueue_jobs", stuck)
        waiting = asyncio.ensure_future(app.jobs.enqueue(prompt="x", user_id="ada"))
        await asyncio.wait_for(writing.wait(), WAIT_S)
        enqueuer = app.node.whereis(ENQUEUER)
        assert enqueuer is not None
        exit(enqueuer, KILL)
        with pytest.raises(JobsNotRunningError, match="may or may not be written"):
            await asyncio.wait_for(waiting, WAIT_S)
        monkeypatch.setattr(app.store, "enqueue_jobs", real)
        jobs_sup = app.node.whereis(JOBS_SUP)
        assert jobs_sup is not None
        # The kill's exit signal reached the supervisor before the caller was told; a call
        # it answers after that signal finds the enqueuer started again.
        await which_children(jobs_sup)
        handle = await app.jobs.enqueue(prompt="y", user_id="ada")
    assert handle.created
