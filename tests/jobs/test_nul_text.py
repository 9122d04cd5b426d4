"""NUL (U+0000) in a job's text behaves alike on SQLite and PostgreSQL (which cannot store
it): a client's is refused at enqueue, what a model answered or a template rendered is
stored with U+FFFD in its place and the job completes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from beamish.jobs import InvalidJobError, JobNotFoundError, JobSubmission
from beamish.store.models import NewTemplateVersion
from beamish.templates import TemplateNotFoundError
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio

NUL_SAID = r"holds a NUL character \(U\+0000\)"

REFUSED: list[dict[str, Any]] = [
    {"prompt": "Sum\x00up"},
    {"prompt": "Sum up", "system": "be\x00brief"},
    {"template": "digest", "variables": {"topic": ["ok", "\x00"]}},
    {"template": "digest", "variables": {"topic": "x", "no\x00te": 1}},
    {"prompt": "Sum up", "format": "json", "schema": {"title": "\x00"}},
    {"template": "dig\x00est"},
    {"prompt": "Sum up", "task_type": "chat\x00"},
]


@pytest.mark.parametrize("fields", REFUSED)
def test_a_submission_with_nul_is_refused_as_the_python_api_refuses_it(
        fields: dict[str, Any]) -> None:
    """HTTP and the user channel refuse what ``Jobs.enqueue`` refuses."""
    with pytest.raises(ValueError, match=NUL_SAID):
        JobSubmission.model_validate(fields)


def test_a_submitted_unique_key_with_nul_is_refused() -> None:
    """A unique key is stored too: one with NUL is refused as the rest."""
    with pytest.raises(ValueError, match=NUL_SAID):
        JobSubmission.model_validate({"prompt": "Sum up", "unique_key": "k\x00"})


async def test_a_job_whose_text_holds_nul_is_refused_on_both_backends(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """Each is an ``InvalidJobError`` saying so (PostgreSQL gave a store error, SQLite
    queued it); a template name with NUL checked at enqueue is not found; nothing is
    queued."""
    async with running(tmp_path, fake_llm, database_url=store_url, enabled=False) as (
            app, _):
        await app.templates.create_version(NewTemplateVersion(name="digest",
                                                              prompt="Sum up {{ topic }}"))
        for fields in REFUSED:
            with pytest.raises(InvalidJobError, match=NUL_SAID):
                await app.jobs.enqueue(user_id="ada", **fields)
        with pytest.raises(TemplateNotFoundError):
            await app.jobs.enqueue(user_id="ada", template="dig\x00est", check_template=True)
        assert (await app.jobs.list_outputs("ada")).outputs == ()


async def test_nul_in_an_answer_and_a_rendered_prompt_is_stored_as_u_fffd(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """A template that renders NUL (a Jinja escape) and a model answering NUL: the job
    completes on its first attempt, prompt, system prompt and answer stored with U+FFFD
    (on PostgreSQL every finish failed, burning the attempts)."""
    fake_llm.reply = "an\x00swer"
    async with running(tmp_path, fake_llm, database_url=store_url) as (app, _):
        await app.templates.create_version(NewTemplateVersion(
            name="odd", prompt=r'Say {{ "\x00" }}{{ word }}', system=r'Be {{ "\x00" }}'))
        handle = await app.jobs.enqueue(template="odd", variables={"word": "hi"},
                                        user_id="ada")
        output = await app.jobs.wait(handle.output_id, user_id="ada", timeout=WAIT_S)
    assert (output.status, output.attempts, output.error) == ("completed", 1, None)
    assert (output.prompt, output.system_prompt) == ("Say \ufffdhi", "Be \ufffd")
    assert output.parsed_output == "an\ufffdswer"


async def test_lookups_and_python_arguments_with_nul_answer_as_on_sqlite(
        tmp_path: Path, store_url: str, fake_llm: FakeLLMServer) -> None:
    """An output id or a cursor holding NUL is not found / not a cursor (PostgreSQL could
    not compare it); a unique key or a feedback reason with NUL given from Python is an
    InvalidJobError naming it."""
    async with running(tmp_path, fake_llm, database_url=store_url) as (app, _):
        with pytest.raises(JobNotFoundError):
            await app.jobs.get_output("out\x00put", user_id="ada")
        cursor = base64.urlsafe_b64encode(
            json.dumps(["2026-01-01T00:00:00+00:00", "a\x00b"]).encode()).decode()
        with pytest.raises(InvalidJobError, match="cursor"):
            await app.jobs.list_outputs("ada", cursor=cursor)
        with pytest.raises(InvalidJobError, match=NUL_SAID) as refused:
            await app.jobs.enqueue(user_id="ada", prompt="x", unique_key="k\x00")
        assert refused.value.param == "unique_key"
        handle = await app.jobs.enqueue(user_id="ada", prompt="x")
        await app.jobs.wait(handle.output_id, user_id="ada", timeout=30)
        with pytest.raises(InvalidJobError, match=NUL_SAID) as refused:
            await app.jobs.set_feedback(handle.output_id, user_id="ada", rating="up",
                                        reason="fine\x00")
        assert refused.value.param == "reason"
