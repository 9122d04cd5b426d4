"""The gateway benchmark's fake upstream and load generator speak the wire formats they claim.

``python -m bench gateway`` is only honest if its upstream answers as the official openai SDK
expects (else beamish would be measured failing) and its load generator counts a served
answer only when it is one; both are checked here against the real SDK and a real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from bench._http_load import HttpLoadProcess, request
from bench._upstream import DEFAULT_CHUNKS, MODELS, UpstreamProcess
from bench.gateway import next_step

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    """The fake upstream in its own process."""
    process = UpstreamProcess()
    try:
        yield process
    finally:
        process.close()


def _sdk(upstream: UpstreamProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=upstream.base_url, api_key="k", max_retries=0)


async def test_a_completion_has_the_asked_tokens_and_their_usage(
        upstream: UpstreamProcess) -> None:
    """``chunks-3`` answers three tokens; usage counts them and the prompt's words."""
    async with _sdk(upstream) as sdk:
        answer = await sdk.chat.completions.create(
            model="chunks-3", messages=[{"role": "user", "content": "one two"}])
    assert answer.choices[0].message.content == "tok tok tok "
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (2, 3)


async def test_a_stream_ends_with_its_usage_chunk_when_asked(
        upstream: UpstreamProcess) -> None:
    """A paced stream yields the role, each token, the finish, then the usage chunk."""
    async with _sdk(upstream) as sdk:
        stream = await sdk.chat.completions.create(
            model="paced-1000tps-chunks-4", messages=[{"role": "user", "content": "a"}],
            stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert deltas == ["", "tok ", "tok ", "tok ", "tok ", None]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


async def test_models_lists_the_named_models_and_other_names_get_the_default(
        upstream: UpstreamProcess) -> None:
    """``/v1/models`` lists ``MODELS``; an unknown model answers ``DEFAULT_CHUNKS`` tokens."""
    async with _sdk(upstream) as sdk:
        listed = [model.id async for model in sdk.models.list()]
        answer = await sdk.chat.completions.create(
            model="anything", messages=[{"role": "user", "content": "a"}])
    assert listed == list(MODELS)
    assert answer.choices[0].message.content == "tok " * DEFAULT_CHUNKS


async def test_the_load_generator_counts_served_answers_and_errors_apart(
        upstream: UpstreamProcess) -> None:
    """Finished streams are served; a 404, or a 200 that is not a finished stream, is an
    error."""
    load = HttpLoadProcess()
    try:
        body = b'{"model": "chunks-2", "stream": true, "messages": []}'
        job = {"host": "127.0.0.1", "port": upstream.port, "clients": 2, "seconds": 1.0,
               "warmup": 0.0, "check": "v1_stream"}
        served = await load.run({**job, "request": request(
            "POST", "/v1/chat/completions", upstream.port, body=body)})
        refused = await load.run({**job, "check": "json", "request": request(
            "POST", "/v1/nowhere", upstream.port, body=body)})
        unfinished = await load.run({**job, "request": request(
            "POST", "/v1/chat/completions", upstream.port, body=body.replace(b"true", b"false"))})
    finally:
        load.close()
    assert served["served"] > 0
    assert served["errors"] == 0
    assert refused["served"] == 0
    assert refused["errors"] > 0
    assert refused["error_samples"][0].startswith("404")
    assert unfinished["served"] == 0
    assert unfinished["error_samples"][0].startswith("200")


def test_the_channel_search_doubles_then_halves_the_interval() -> None:
    """From 25: doubling while sustained, then bisecting until within the resolution."""
    tried: list[int] = []
    sustained, failed = 0, None
    step = next_step(sustained, failed, 25, 4000)
    while step is not None:
        tried.append(step)
        if step <= 130:  # a server that sustains 130 conversations and not one more
            sustained = step
        else:
            failed = step
        step = next_step(sustained, failed, 25, 4000)
    assert tried == [25, 50, 100, 200, 150, 125, 137]
    assert sustained == 125


def test_the_channel_search_stops_at_its_ceiling_and_below_its_first_step() -> None:
    """Sustaining the ceiling ends the search; failing the first step bisects toward 0."""
    assert next_step(4000, None, 25, 4000) is None
    assert next_step(0, 25, 25, 4000) == 12
    assert next_step(0, 2, 25, 4000) is None
