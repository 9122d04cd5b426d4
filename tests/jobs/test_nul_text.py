"""NUL (U+0000) in a job's text behaves alike on SQLite and PostgreSQL (which cannot store
it): a client's is refused at enqueue, what a model answered or a template rendered is
stored with U+FFFD in its place and the job completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beamish.jobs import InvalidJobError, JobSubmission
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
