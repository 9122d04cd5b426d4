"""A rendered template prompt is bound by ``[jobs] max_prompt_chars`` as a raw prompt is: at
enqueue when the template is checked, else on the job's first attempt, for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamish.jobs import InvalidJobError
from beamish.store.models import NewTemplateVersion
from tests.jobs._app import running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio

LIMIT = 100


async def test_a_template_rendering_too_much_prompt_is_refused_or_fails_at_once(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Under a 100-character limit, variables rendering 120 characters (prompt and system)
    are refused at enqueue with check_template (param variables, naming both sizes); the
    same job unchecked fails its first attempt with reason prompt_too_long, calling no
    model; a render within the limit runs."""
    async with running(tmp_path, fake_llm, max_prompt_chars=LIMIT) as (app, events):
        await app.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Summarise {{ text }}", system="S" * 10))
        long = {"text": "x" * 100}  # "Summarise " (10) + 100 + the system's 10
        with pytest.raises(InvalidJobError, match="rendered 120 characters") as refused:
            await app.jobs.enqueue(user_id="ada", template="digest", variables=long,
                                   check_template=True)
        unchecked = await app.jobs.enqueue(user_id="ada", template="digest", variables=long,
                                           format="text")
        [failed] = await events.wait("failed", job_id=unchecked.job_id)
        output = await app.jobs.get_output(unchecked.output_id, user_id="ada")
        short = await app.jobs.enqueue(user_id="ada", template="digest",
                                       variables={"text": "x" * 80}, check_template=True)
        await events.wait("completed", job_id=short.job_id)
    assert refused.value.param == "variables"
    assert f"at most {LIMIT} ([jobs] max_prompt_chars)" in str(refused.value)
    assert failed.error_reason == "prompt_too_long"
    assert (output.status, output.attempts, output.prompt) == ("failed", 1, None)
    assert "rendered 120 characters" in (output.error or "")
    assert len([r for r in fake_llm.requests if r.route == "generate"]) == 1
