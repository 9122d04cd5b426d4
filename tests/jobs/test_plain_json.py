"""A job's values are plain JSON or refused at enqueue, and a group writer whose write fails
answers every sender of its batch and goes on serving."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from beamish.jobs import InvalidJobError
from beamish.jobs.actors import submit
from beamish.jobs.context import ENQUEUER, JobsContext
from beamish.store import StoreError
from tests.jobs._app import WAIT_S, running
from tests.llm.providers._fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("fields", "said"), [
    ({"variables": {"s": {1, 2}}}, "variables.s: a value of type set is not JSON"),
    ({"variables": {"b": b"x"}}, "variables.b: a value of type bytes is not JSON"),
    ({"variables": {"d": Decimal("1.5")}}, "variables.d: a value of type Decimal is not JSON"),
    ({"variables": {"n": float("nan")}}, "variables.n: nan is not a JSON number"),
    ({"variables": {"a": [1, {"i": float("-inf")}]}},
     "variables.a.1.i: -inf is not a JSON number"),
    ({"variables": {"k": {3: "x"}}}, "variables.k: the key 3 is not a string"),
    ({"schema": {"type": "object", "enum": [{1}]}, "format": "json"},
     "schema.enum.0: a value of type set is not JSON"),
])
async def test_values_that_are_not_plain_json_are_refused_naming_where(
        tmp_path: Path, fake_llm: FakeLLMServer, fields: dict[str, Any], said: str) -> None:
    """A set, bytes, a Decimal, NaN or infinity, or a key that is not a string, anywhere in
    variables or schema, is an InvalidJobError naming the path; a good job enqueued at the
    same time completes, and nothing of the bad one is stored."""
    async with running(tmp_path, fake_llm) as (app, events):
        template = "digest" if "variables" in fields else None
        prompt = None if template else "x"
        bad, good = await asyncio.gather(
            app.jobs.enqueue(user_id="ada", template=template, prompt=prompt, **fields),
            app.jobs.enqueue(user_id="bob", prompt="fine"), return_exceptions=True)
        assert isinstance(bad, InvalidJobError), bad
        assert not isinstance(good, BaseException)
        await events.wait("completed", job_id=good.job_id)
        assert (await app.jobs.list_outputs("ada")).outputs == ()
    assert said in str(bad)
    assert bad.param == next(iter(fields))


async def test_a_failed_write_answers_its_batch_and_the_writer_goes_on(
        tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """An item whose write raises what no store raises (a bug) fails its sender with a
    StoreError saying so, logged once with the batch's size, instead of leaving the sender
    waiting; the enqueuer then takes the next job as before."""
    caplog.set_level(logging.ERROR, logger="beamish.jobs")
    async with running(tmp_path, fake_llm) as (app, events):
        ctx = JobsContext(app.services, app.settings.jobs)
        with pytest.raises(StoreError, match="enqueuer failed to write") as refused:
            await asyncio.wait_for(submit(ctx, ENQUEUER, "not a job"), WAIT_S)
        handle = await app.jobs.enqueue(user_id="ada", prompt="next")
        await events.wait("completed", job_id=handle.job_id)
    assert "AttributeError" in str(refused.value)
    failures = [r.getMessage() for r in caplog.records if r.name == "beamish.jobs"]
    assert len(failures) == 1
    assert "a batch of 1" in failures[0]
