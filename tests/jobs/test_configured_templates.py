"""Jobs that name neither a template nor a prompt render the template their task type's
configuration names; and the output's task type is the one the attempt served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from beamish.application import Application
from beamish.jobs import MissingPromptError
from beamish.store.models import GlobalConfig, NewTemplateVersion
from beamish.templates import TemplateVariablesError
from tests.jobs._app import running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio


async def _digest(app: Application) -> None:
    """Template ``digest``: v1 (label ``staging``) and v2 (served: no production label),
    both of task type ``summarize``, v1 with a schema requiring ``topic``."""
    await app.templates.create_version(NewTemplateVersion(
        name="digest", prompt="Digest of {{ topic }}", task_type="summarize",
        variables_schema={"type": "object", "required": ["topic"],
                          "properties": {"topic": {"type": "string"}}}))
    await app.templates.create_version(NewTemplateVersion(
        name="digest", prompt="Digest v2 of {{ topic }}", task_type="summarize"))
    await app.templates.set_label("digest", "staging", 1)


async def test_a_job_without_template_or_prompt_renders_its_task_types_template(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """The global config of the task type names template and label: the job renders that
    version with its variables; the output records the template, version, task type and
    where the template came from."""
    async with running(tmp_path, fake_llm) as (app, events):
        await _digest(app)
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="openai_compatible", model="model-b",
            template="digest", template_label="staging"))
        handle = await app.jobs.enqueue(user_id="ada", task_type="summarize",
                                        variables={"topic": "tides"})
        await events.wait("completed", job_id=handle.job_id)
        output = await app.jobs.get_output(handle.output_id, user_id="ada")
    assert (output.template_name, output.template_version, output.prompt, output.task_type,
            output.model) == ("digest", 1, "Digest of tides", "summarize", "model-b")
    assert output.request["template_label"] == "staging"
    assert output.provenance is not None
    assert output.provenance["template"] == "global_config"
    assert events.of("queued", handle.job_id)[0].template == "digest"


async def test_a_tier_config_s_template_wins_for_users_of_that_tier(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """The configured template is resolved for the job's user: a user whose tier has its
    own config gets that one's template (and its provenance), others the any-tier one's."""
    async with running(tmp_path, fake_llm) as (app, events):
        await _digest(app)
        await app.templates.create_version(NewTemplateVersion(
            name="premium", prompt="Premium digest of {{ topic }}", task_type="summarize"))
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="openai_compatible", model="model-a",
            template="digest"))
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", tier="pro", provider="openai_compatible", model="model-a",
            template="premium"))
        await app.store.upsert_profile("bob", tier="pro")
        ada = await app.jobs.enqueue(user_id="ada", task_type="summarize",
                                     variables={"topic": "x"})
        bob = await app.jobs.enqueue(user_id="bob", task_type="summarize",
                                     variables={"topic": "x"})
        await events.wait("completed", count=2)
        ada_output = await app.jobs.get_output(ada.output_id)
        bob_output = await app.jobs.get_output(bob.output_id)
    assert (ada_output.template_name, ada_output.prompt) == ("digest", "Digest v2 of x")
    assert (bob_output.template_name, bob_output.prompt) == ("premium", "Premium digest of x")
    assert bob_output.provenance is not None
    assert bob_output.provenance["template"] == "tier_config"


async def test_a_job_with_neither_and_no_configured_template_is_refused(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """No template, no prompt, and a task type whose configuration names none: a
    MissingPromptError naming the task type and the user; nothing is queued."""
    async with running(tmp_path, fake_llm) as (app, _):
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="openai_compatible", model="model-a"))
        with pytest.raises(MissingPromptError, match=r"task type 'summarize'.*user 'ada'"):
            await app.jobs.enqueue(user_id="ada", task_type="summarize",
                                   variables={"topic": "x"})
        with pytest.raises(MissingPromptError, match="task type 'chat'"):
            await app.jobs.enqueue(user_id="ada")
        assert (await app.jobs.list_outputs("ada")).outputs == ()


async def test_check_template_validates_variables_against_the_configured_template(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """With check_template, the configured template's schema checks the variables at
    enqueue, naming the bad one; without it the job fails when it runs."""
    async with running(tmp_path, fake_llm) as (app, events):
        await _digest(app)
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="openai_compatible", model="model-a",
            template="digest", template_label="staging"))
        with pytest.raises(TemplateVariablesError, match="topic"):
            await app.jobs.enqueue(user_id="ada", task_type="summarize",
                                   variables={"topic": 12}, check_template=True)
        assert (await app.jobs.list_outputs("ada")).outputs == ()
        unchecked = await app.jobs.enqueue(user_id="ada", task_type="summarize",
                                           variables={"topic": 12})
        await events.wait("failed", job_id=unchecked.job_id)


async def test_provenance_names_the_template_only_as_the_job_used_it(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A template the job named is the request's, even when the config names another; a
    raw prompt used no template, so its provenance names none."""
    async with running(tmp_path, fake_llm) as (app, events):
        await _digest(app)
        await app.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="openai_compatible", model="model-a",
            template="digest", template_label="staging"))
        named = await app.jobs.enqueue(user_id="ada", template="digest",
                                       variables={"topic": "x"}, task_type="summarize")
        raw = await app.jobs.enqueue(user_id="ada", prompt="x", task_type="summarize")
        await events.wait("completed", count=2)
        named_output = await app.jobs.get_output(named.output_id)
        raw_output = await app.jobs.get_output(raw.output_id)
    assert named_output.provenance is not None
    assert (named_output.template_version, named_output.provenance["template"]) == (
        2, "request")
    assert raw_output.provenance is not None
    assert "template" not in raw_output.provenance


async def test_the_output_task_type_is_the_one_the_attempt_served(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A template job naming no task type records its version's: at enqueue when the
    enqueue rendered it, else once its attempt finishes; a job's own task type wins."""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with running(tmp_path, fake_llm) as (app, events):
        await _digest(app)
        scheduled = await app.jobs.enqueue(user_id="ada", template="digest",
                                           variables={"topic": "x"}, run_at=later)
        pending = await app.jobs.get_output(scheduled.output_id)
        # A format given and no check: nothing renders at enqueue ("chat" until it runs).
        unrendered = await app.jobs.enqueue(user_id="ada", template="digest",
                                            variables={"topic": "x"}, format="text")
        own = await app.jobs.enqueue(user_id="ada", template="digest",
                                     variables={"topic": "x"}, format="text",
                                     task_type="reasoning")
        await events.wait("completed", count=2)
        served = await app.jobs.get_output(unrendered.output_id)
        kept = await app.jobs.get_output(own.output_id)
    assert (pending.status, pending.task_type) == ("pending", "summarize")
    assert served.task_type == "summarize"
    assert kept.task_type == "reasoning"
