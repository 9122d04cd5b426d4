"""Re-runs repeat a job as it ran — its template version, model and parameters — whatever
changed since; regenerations change what they name and keep the rest as the parent ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamish.application import Application
from beamish.jobs import InvalidJobError, JobHandle
from beamish.store.job_models import OutputRecord
from beamish.store.models import GlobalConfig, NewTemplateVersion
from tests.jobs._app import Events, running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio


async def _done(app: Application, events: Events, handle: JobHandle) -> OutputRecord:
    await events.wait("completed", job_id=handle.job_id)
    return await app.jobs.get_output(handle.output_id, user_id="ada")


async def test_a_rerun_keeps_the_parents_version_and_model_after_both_changed(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """After the label moved to v2 and the user's default model changed, a fresh job gets
    v2 and the new model, but a re-run renders the parent's v1 with the parent's model and
    parameters, its variables and format, pinned as request overrides."""
    async with running(tmp_path, fake_llm) as (app, events):
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="One {{ topic }}", task_type="summarize",
            output_format="markdown"))
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Two {{ topic }}", task_type="summarize"))
        await app.templates.set_label("digest", "production", 1)
        parent = await _done(app, events, await app.jobs.enqueue(
            user_id="ada", template="digest", variables={"topic": "tides"}))
        await app.templates.set_label("digest", "production", 2)
        await app.store.upsert_profile("ada")
        await app.store.set_default("ada", "openai_compatible", "model-b")
        fresh = await _done(app, events, await app.jobs.enqueue(
            user_id="ada", template="digest", variables={"topic": "tides"}))
        again = await _done(app, events, await app.jobs.rerun(parent.output_id,
                                                              user_id="ada"))
    assert (parent.template_version, parent.model, parent.format) == (1, "model-a",
                                                                      "markdown")
    assert (fresh.template_version, fresh.model) == (2, "model-b")
    assert (again.template_version, again.prompt, again.model, again.provider) == (
        1, "One tides", "model-a", "openai_compatible")
    assert (again.format, again.task_type, again.variables) == (
        "markdown", "summarize", {"topic": "tides"})
    assert again.parameters == parent.parameters
    assert again.provenance is not None
    assert again.provenance["model"] == "request"
    assert (again.parent_output_id, again.relation) == (parent.output_id, "rerun")


async def test_a_rerun_keeps_the_parents_parameters_after_the_config_changed(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A task type's global config changed after the parent (model and temperature): the
    re-run still sends the parent's model and temperature upstream."""
    async with running(tmp_path, fake_llm) as (app, events):
        config = GlobalConfig.model_validate({
            "task_type": "summarize", "provider": "openai_compatible", "model": "model-a",
            "parameters": {"temperature": 0.2}})
        await app.store.set_global_config(config)
        parent = await _done(app, events, await app.jobs.enqueue(
            user_id="ada", prompt="x", task_type="summarize"))
        await app.store.set_global_config(config.model_copy(update={
            "model": "model-b", "parameters": config.parameters.model_copy(
                update={"temperature": 0.9})}))
        again = await _done(app, events, await app.jobs.rerun(parent.output_id,
                                                              user_id="ada"))
    sent = [r.body for r in fake_llm.requests if r.route == "generate"]
    assert [(b["model"], b.get("temperature")) for b in sent] == [
        ("model-a", 0.2), ("model-a", 0.2)]
    assert parent.parameters is not None
    assert again.parameters == parent.parameters
    assert again.parameters is not None
    assert again.parameters["temperature"] == 0.2


async def test_regenerate_changes_variables_or_model_and_keeps_the_rest(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Regenerate with new variables renders the parent's version with them (the model the
    parent's); with a new model (bare: the parent's provider) or parameters it keeps the
    parent's version and variables, merging the parameters over the parent's."""
    async with running(tmp_path, fake_llm) as (app, events):
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="One {{ topic }}"))
        parent = await _done(app, events, await app.jobs.enqueue(
            user_id="ada", template="digest", variables={"topic": "tides"},
            overrides={"parameters": {"temperature": 0.4}}))
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Two {{ topic }}"))
        await app.store.upsert_profile("ada")
        await app.store.set_default("ada", "openai_compatible", "model-b")
        waves = await _done(app, events, await app.jobs.regenerate(
            parent.output_id, user_id="ada", variables={"topic": "waves"}))
        other = await _done(app, events, await app.jobs.regenerate(
            parent.output_id, user_id="ada", model="model-c"))
        qualified = await _done(app, events, await app.jobs.regenerate(
            parent.output_id, user_id="ada", model="openai_compatible:model-d",
            parameters={"top_p": 0.5}))
    assert (waves.template_version, waves.prompt, waves.model, waves.variables) == (
        1, "One waves", "model-a", {"topic": "waves"})
    assert (other.template_version, other.prompt, other.model) == (1, "One tides",
                                                                   "model-c")
    assert (qualified.provider, qualified.model, qualified.prompt) == (
        "openai_compatible", "model-d", "One tides")
    assert qualified.parameters is not None
    assert (qualified.parameters["temperature"], qualified.parameters["top_p"]) == (0.4, 0.5)
    assert {o.relation for o in (waves, other, qualified)} == {"regenerate"}
    assert {o.parent_output_id for o in (waves, other, qualified)} == {parent.output_id}


async def test_regenerate_checks_new_variables_against_the_parents_version(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """New variables that do not fit the schema of the version the parent rendered are
    refused at once, even when the version served now would take them."""
    async with running(tmp_path, fake_llm) as (app, events):
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="One {{ topic }}",
            variables_schema={"type": "object", "required": ["topic"]}))
        parent = await _done(app, events, await app.jobs.enqueue(
            user_id="ada", template="digest", variables={"topic": "tides"}))
        await app.templates.create_version(NewTemplateVersion(name="digest", prompt="Two"))
        with pytest.raises(ValueError, match="topic"):
            await app.jobs.regenerate(parent.output_id, user_id="ada", variables={})


async def test_regenerating_a_raw_prompt_with_variables_is_refused(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Variables fill a template: a parent that ran a raw prompt takes none (an
    InvalidJobError, param variables, saying so) rather than a job that ignores them;
    nothing is queued."""
    async with running(tmp_path, fake_llm) as (app, events):
        parent = await _done(app, events, await app.jobs.enqueue(user_id="ada", prompt="x"))
        with pytest.raises(InvalidJobError, match="ran a raw prompt") as refused:
            await app.jobs.regenerate(parent.output_id, user_id="ada",
                                      variables={"topic": "waves"})
        assert len((await app.jobs.list_outputs("ada")).outputs) == 1
    assert refused.value.param == "variables"
    assert "variables fill a template" in str(refused.value)
