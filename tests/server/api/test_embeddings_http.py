"""POST /v1/embeddings, driven by the official openai SDK over a real HTTP server."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import openai
import pytest

from beamish.llm.providers.echo import echo_embedding
from beamish.server.api import implicit_session_id
from beamish.server.serve import BeamishServer
from beamish.store import ProviderRecord, TaskOverride
from tests._serve import token
from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.server.api._support import ApiServer, encrypted, register, serve_api

pytestmark = pytest.mark.anyio


def _close(got: list[float], want: tuple[float, ...]) -> bool:
    # base64 carries float32: equal to the float64 vector up to float32's precision.
    return len(got) == len(want) and all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)
                                         for a, b in zip(got, want, strict=True))


async def test_the_sdk_embeds_against_beamish_serve(beamish: BeamishServer) -> None:
    """client.embeddings.create works against beamish serve; usage is in the ledger once."""
    async with openai.AsyncOpenAI(base_url=f"{beamish.url}/v1", api_key=token("ada"),
                                  max_retries=0) as client:
        raw = await client.embeddings.with_raw_response.create(
            model="beamish", input=["one two", "three"])  # the SDK asks for base64
        floats = await client.embeddings.create(model="echo:echo-1", input="one",
                                                encoding_format="float", dimensions=8)
    result = raw.parse()
    assert result.object == "list"
    assert [item.index for item in result.data] == [0, 1]
    assert _close(result.data[0].embedding, echo_embedding("one two"))
    assert _close(result.data[1].embedding, echo_embedding("three"))
    assert (result.model, result.usage.prompt_tokens, result.usage.total_tokens) == (
        "echo-1", 3, 3)
    assert floats.data[0].embedding == list(echo_embedding("one", 8))
    assert raw.headers["x-beamish-session"] == implicit_session_id("ada")
    rows = await beamish.runtime.store.usage_by_task_type(user_id="ada")
    assert [(r.task_type, r.requests, r.prompt_tokens, r.completion_tokens)
            for r in rows] == [("embeddings", 2, 4, 0)]


async def test_the_callers_embeddings_model_serves_through_the_openai_sdk(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """An embeddings task override on a compatible upstream: its vectors, its usage."""
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])
    async with serve_api(tmp_path, real_server=True) as api:
        await api.rt.users.set_task_override("ada", TaskOverride(
            task_type="embeddings", provider="openai_compatible", model="embed-a"))
        async with _sdk(api) as client:
            result = await client.embeddings.create(model="default", input=["abc", "de"],
                                                    dimensions=2)
        chat = await api.http.post("/v1/chat/completions", headers=api.auth(), json={
            "model": "beamish", "messages": [{"role": "user", "content": "hi"}]})
        sent = fake_llm.requests[-1]
    assert [item.embedding for item in result.data] == [[3.0, 1.0], [2.0, 1.0]]
    assert (result.model, result.usage.prompt_tokens) == ("embed-a", 2)
    assert (sent.route, sent.body["model"], sent.body["dimensions"]) == (
        "embeddings", "embed-a", 2)
    assert chat.json()["model"] == "echo-1"  # the override is for embeddings alone


async def test_anthropic_embeddings_are_a_clear_400(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller whose embeddings model is Anthropic's gets a 400 saying what to configure."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")
    async with serve_api(tmp_path, real_server=True) as api:
        await api.rt.users.set_default("ada", "anthropic", "claude-sonnet-4")
        async with _sdk(api) as client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.embeddings.create(model="beamish", input="hi")
        totals = await api.rt.store.usage_totals(user_id="ada")
    body: Any = caught.value.body
    assert body["code"] == "provider_rejected"
    assert body["message"] == ("anthropic has no embeddings endpoint; configure an "
                               "embeddings model for the task type embeddings")
    assert (totals.requests, totals.errors) == (1, 1)


@pytest.mark.parametrize(("payload", "said"), [
    ({"input": [1, 2, 3]}, "token arrays is not supported"),
    ({"input": [[1, 2], [3]]}, "token arrays is not supported"),
    ({"input": []}, "input is empty"),
    ({"input": ["a", ""]}, "input[1] is an empty string"),
])
async def test_inputs_beamish_cannot_embed_are_a_400(tmp_path: Path, payload: dict[str, Any],
                                                     said: str) -> None:
    """Token arrays, no inputs and empty texts: 400s in OpenAI's shape, nothing recorded."""
    async with serve_api(tmp_path) as api:
        answer = await api.http.post("/v1/embeddings", headers=api.auth(),
                                     json={"model": "beamish", **payload})
        assert (await api.rt.store.usage_totals()).requests == 0
    assert answer.status_code == 400
    assert said in answer.json()["error"]["message"]
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("payload", [
    {"input": "x", "encoding_format": "int8"}, {"input": "x", "dimensions": 0},
    {"input": "x", "dimensions": 100_000}, {"model": "beamish"},
    {"input": ["a"] * 1001}])
async def test_malformed_bodies_are_a_422(tmp_path: Path, payload: dict[str, Any]) -> None:
    """A bad encoding or dimensions, no input, texts past max_array_items: a 422."""
    async with serve_api(tmp_path) as api:
        answer = await api.http.post("/v1/embeddings", headers=api.auth(), json=payload)
    assert answer.status_code == 422
    assert answer.json()["error"]["type"] == "validation_error"


async def test_an_unknown_model_is_a_404_and_no_token_is_a_401(tmp_path: Path) -> None:
    """Models are named as for chat completions; the endpoint needs a token."""
    async with serve_api(tmp_path) as api:
        unknown = await api.http.post("/v1/embeddings", headers=api.auth(),
                                      json={"model": "openai:text-embedding-3-small",
                                            "input": "x"})
        anonymous = await api.http.post("/v1/embeddings", json={"input": "x"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    assert anonymous.status_code == 401


def _sdk(api: ApiServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=api.token("ada"),
                              max_retries=0)
