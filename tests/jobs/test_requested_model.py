"""A job that names its provider or model (overrides, or a re-run's or regeneration's pinned
pair) runs on it or not at all: refused at enqueue when it cannot be used then, failed for
good, saying why, when it went away while the job waited — never run on another model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beamish.application import Application
from beamish.jobs import InvalidJobError
from beamish.jobs.requested import unserved
from beamish.llm.hierarchy import (
    Availability,
    ConfigRequest,
    ResolutionInputs,
    resolve_config,
)
from beamish.llm.settings import LLMSettings
from beamish.store.job_models import NewJob
from beamish.store.models import Provider, ProviderRecord
from tests.jobs._app import running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio


def _resolved(request: ConfigRequest) -> str | None:
    settings = LLMSettings()
    config = resolve_config(ResolutionInputs(
        task_type="chat", settings=settings, request=request,
        availability=Availability.of([], settings, configured=frozenset())))
    return unserved(request, config)


def test_a_request_the_resolver_skipped_is_unserved_with_its_warning() -> None:
    """Only echo is usable: a request naming openai (with or without a model) is unserved,
    saying what was skipped and why; naming echo, a bare model of the provider below, or
    nothing at all is served."""
    for request, asked in ((ConfigRequest(provider="openai", model="gpt-4o"), "openai:gpt-4o"),
                           (ConfigRequest(provider="openai"), "provider 'openai'")):
        said = _resolved(request)
        assert said is not None
        assert f"asks for {asked}, which cannot be used" in said
        assert "provider 'openai' is not configured" in said
    for served in (ConfigRequest(provider="echo", model="echo-2"),
                   ConfigRequest(model="echo-2"), ConfigRequest()):
        assert _resolved(served) is None


async def _switch_off(app: Application, kind: Provider) -> None:
    """Make provider ``kind`` unusable: a disabled registry row of that kind (whatever the
    settings or the environment configure)."""
    await app.store.register_provider(ProviderRecord(name=f"off-{kind.replace('_', '-')}",
                                                     kind=kind, enabled=False))


async def test_overrides_naming_an_unusable_provider_are_refused_at_enqueue(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """overrides naming a provider that is switched off are an InvalidJobError (param
    overrides) naming it and why; nothing is queued."""
    async with running(tmp_path, fake_llm) as (app, _):
        await _switch_off(app, "openai")
        with pytest.raises(InvalidJobError) as refused:
            await app.jobs.enqueue(user_id="ada", prompt="x",
                                   overrides={"provider": "openai", "model": "gpt-4o"})
        assert (await app.jobs.list_outputs("ada")).outputs == ()
    assert refused.value.param == "overrides"
    assert "openai:gpt-4o" in str(refused.value)
    assert "disabled in the provider registry" in str(refused.value)


async def test_a_rerun_or_regeneration_on_a_model_gone_away_is_refused(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """The parent ran on openai_compatible:model-a; once that provider is switched off, its
    re-run is refused (param model) rather than run on echo, and so is a regeneration
    naming another unusable provider's model."""
    async with running(tmp_path, fake_llm) as (app, events):
        parent = await app.jobs.enqueue(user_id="ada", prompt="x")
        await events.wait("completed", job_id=parent.job_id)
        await _switch_off(app, "openai")
        with pytest.raises(InvalidJobError, match="openai:gpt-4o") as regenerated:
            await app.jobs.regenerate(parent.output_id, user_id="ada", model="openai:gpt-4o")
        await _switch_off(app, "openai_compatible")
        with pytest.raises(InvalidJobError, match="openai_compatible:model-a") as rerun:
            await app.jobs.rerun(parent.output_id, user_id="ada")
        assert len((await app.jobs.list_outputs("ada")).outputs) == 1
    assert (regenerated.value.param, rerun.value.param) == ("model", "model")
    assert "disabled in the provider registry" in str(rerun.value)


async def test_a_job_whose_provider_went_away_fails_at_once_saying_why(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A job queued naming openai_compatible:model-a (by another process, before the
    provider was switched off) fails on its first attempt, for good, with the resolver's
    reason; no model is called, and the output names none."""
    async with running(tmp_path, fake_llm) as (app, events):
        await _switch_off(app, "openai_compatible")
        job = (await app.store.enqueue_job(NewJob(
            queue="default", max_attempts=3, run_at=datetime.now(UTC), user_id="ada",
            output_id=uuid.uuid4().hex, task_type="chat",
            args={"user_id": "ada", "prompt": "x", "overrides": {
                "provider": "openai_compatible", "model": "model-a"}}))).job
        [failed] = await events.wait("failed", job_id=job.id)
        output = await app.jobs.get_output(job.output_id, user_id="ada")
    assert failed.error_reason == "requested_model_unusable"
    assert (output.status, output.attempts, output.provider, output.model) == (
        "failed", 1, None, None)
    assert output.error is not None
    assert "openai_compatible:model-a, which cannot be used" in output.error
    assert "disabled in the provider registry" in output.error
    assert [r for r in fake_llm.requests if r.route == "generate"] == []
