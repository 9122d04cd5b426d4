"""The OpenAI-compatible API, driven by the official openai SDK over a real HTTP server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import openai
import pytest
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from beamish.llm.settings import LLMSettings
from beamish.server.api import implicit_session_id
from beamish.store import ProviderModel, ProviderRecord, open_store
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.server.api._support import (
    ApiServer,
    encrypted,
    make_settings,
    register,
    serve_api,
)

pytestmark = pytest.mark.anyio

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    """A uvicorn-served API over a fresh runtime."""
    async with serve_api(tmp_path, real_server=True) as api:
        yield api


def sdk(api: ApiServer, user: str = "ada") -> openai.AsyncOpenAI:
    """The official SDK, authenticated as ``user`` with a beamish token."""
    return openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=api.token(user),
                              max_retries=0)


async def test_the_sdk_gets_a_chat_completion(server: ApiServer) -> None:
    """A non-streamed call answers OpenAI's shape, in the caller's implicit session."""
    async with sdk(server) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="beamish", messages=HI)
    answer = raw.parse()
    assert answer.object == "chat.completion"
    assert answer.id == f"chatcmpl-{raw.headers['x-request-id']}"
    assert answer.model == "echo-1"
    assert answer.choices[0].message.content == "[echo] hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens,
            answer.usage.total_tokens) == (2, 3, 5)
    implicit = implicit_session_id("ada")
    assert raw.headers["x-beamish-session"] == implicit
    assert server.rt.sessions.open_sessions() == [(implicit, "ada")]
    totals = await server.rt.store.session_totals("ada", implicit)
    assert (totals.requests, totals.completion_tokens) == (1, 3)


async def test_the_sdk_streams_with_a_final_usage_chunk(server: ApiServer) -> None:
    """stream=True with include_usage: role, tokens, finish, then usage with no choices."""
    async with sdk(server) as client:
        stream = await client.chat.completions.create(
            model="default", messages=HI, stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[echo] hi there"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)
    assert all(c.usage is None for c in chunks[:-1])
    totals = await server.rt.store.usage_totals(user_id="ada")
    assert (totals.requests, totals.completion_tokens) == (1, 3)


async def test_the_sdk_streams_without_usage_unless_asked(server: ApiServer) -> None:
    """Without stream_options the stream has no usage chunk."""
    async with sdk(server) as client:
        stream = await client.chat.completions.create(
            model="beamish", messages=HI, stream=True)
        chunks = [chunk async for chunk in stream]
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_the_callers_preferences_fill_what_the_request_leaves_out(
        server: ApiServer) -> None:
    """The user's stored max_tokens applies unless the request sets its own."""
    await server.http.put("/api/users/ada/llm-config", headers=server.auth(), json={
        "provider": "echo", "model": "echo-1", "parameters": {"max_tokens": 2}})
    many: list[ChatCompletionMessageParam] = [{"role": "user",
                                               "content": "one two three four"}]
    async with sdk(server) as client:
        preferred = await client.chat.completions.create(
            model="beamish", messages=many)
        asked = await client.chat.completions.create(
            model="echo:echo-1", messages=many, max_tokens=10)
    assert (preferred.choices[0].message.content, preferred.choices[0].finish_reason) == (
        "[echo] one ", "length")
    assert asked.choices[0].message.content == "[echo] one two three four"


async def test_a_request_without_a_model_uses_the_callers(server: ApiServer) -> None:
    """model is optional: left out, the caller's resolved model answers."""
    answer = await server.http.post("/v1/chat/completions", headers=server.auth(),
                                    json={"messages": HI})
    assert answer.status_code == 200
    assert answer.json()["model"] == "echo-1"


async def test_the_session_header_names_the_session(server: ApiServer) -> None:
    """X-Beamish-Session runs the call in that session (opened for the caller)."""
    async with sdk(server) as client:
        await client.chat.completions.create(
            model="beamish", messages=HI,
            extra_headers={"X-Beamish-Session": "conv-1"})
    assert server.rt.sessions.open_sessions() == [("conv-1", "ada")]
    assert (await server.rt.store.session_totals("ada", "conv-1")).requests == 1


async def test_another_users_session_id_is_the_callers_own_and_implicit_ids_are_refused(
        server: ApiServer) -> None:
    """Naming bob's session id runs in ada's own session of that id (bob's is untouched);
    naming bob's implicit session id is a 400."""
    await server.http.post("/api/sessions", json={"session_id": "bobs"},
                           headers=server.auth("bob"))
    async with sdk(server) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="beamish", messages=HI, extra_headers={"X-Beamish-Session": "bobs"})
        assert answer.headers["x-beamish-session"] == "bobs"
        with pytest.raises(openai.BadRequestError, match="reserved"):
            await client.chat.completions.create(
                model="beamish", messages=HI,
                extra_headers={"X-Beamish-Session": implicit_session_id("bob")})
    assert server.rt.sessions.open_sessions() == [("bobs", "ada"), ("bobs", "bob")]
    assert (await server.rt.store.session_totals("ada", "bobs")).requests == 1
    assert (await server.rt.store.usage_totals(user_id="bob")).requests == 0


async def test_the_sdk_lists_models(server: ApiServer) -> None:
    """GET /v1/models: the beamish alias, then the catalog as provider:model."""
    async with sdk(server) as client:
        models = [model.id async for model in client.models.list()]
    assert models == ["beamish", "echo:echo-1"]


async def test_sdk_errors_are_typed(server: ApiServer) -> None:
    """A bad token, n > 1 and an empty conversation raise the SDK's typed errors."""
    bad = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0)
    async with bad, sdk(server) as client:
        with pytest.raises(openai.AuthenticationError, match="malformed token"):
            await bad.chat.completions.create(
                model="beamish", messages=HI)
        with pytest.raises(openai.BadRequestError, match="n > 1"):
            await client.chat.completions.create(
                model="beamish", messages=HI, n=2)
        with pytest.raises(openai.UnprocessableEntityError, match=r"body\.messages"):
            await client.chat.completions.create(model="beamish", messages=[])
        after = await client.chat.completions.create(
            model="beamish", messages=HI)
    assert after.choices[0].message.content == "[echo] hi there"
    assert (await server.rt.store.usage_totals()).requests == 1


async def test_a_stream_broken_by_the_provider_raises_in_the_sdk(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A provider stream cut after two tokens: the SDK raises APIError; usage is an error."""
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])
    fake_llm.script(Fault.cut(after_tokens=2))
    async with serve_api(tmp_path, real_server=True) as api:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        async with sdk(api) as client:
            stream = await client.chat.completions.create(
                model="beamish", messages=HI, stream=True)
            seen: list[str] = []
            with pytest.raises(openai.APIError, match="stream broke"):
                await _read(stream, seen)
        assert "".join(seen) == "you said: "
        totals = await api.rt.store.usage_totals(user_id="ada")
        assert (totals.requests, totals.errors) == (1, 1)


async def _read(stream: AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


# --- naming models -------------------------------------------------------------------------


async def _with_discovered_fake(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Register the fake upstream as ``fake``, its catalog discovered: model-a and model-b."""
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])
    async with open_store(make_settings(tmp_path).database_url) as store:
        now = datetime.now(UTC)
        await store.replace_provider_models("fake", [
            ProviderModel(provider="fake", model=m, discovered_at=now)
            for m in ("model-a", "model-b")])


@pytest.mark.parametrize("model", ["nonexistent-model", "anthropic:claude-3-5-haiku",
                                   "fake", "echo:gpt-4o", "fake/model-z", "ghost/model-a"])
async def test_an_unknown_model_is_a_404_model_not_found(
        tmp_path: Path, fake_llm: FakeLLMServer, model: str) -> None:
    """An unknown model, an unconfigured provider or a provider's name alone: 404, no call."""
    await _with_discovered_fake(tmp_path, fake_llm)
    async with serve_api(tmp_path, real_server=True) as api, sdk(api) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model=model, messages=HI)
        raw = await api.http.post("/v1/chat/completions", headers=api.auth(),
                                  json={"model": model, "messages": HI})
        assert (await api.rt.store.usage_totals()).requests == 0
    assert caught.value.body == raw.json()["error"]
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert (raw.json()["error"]["code"], raw.json()["error"]["param"]) == (
        "model_not_found", "model")
    assert repr(model) in raw.json()["error"]["message"]
    assert fake_llm.requests == []


async def test_every_listed_model_is_accepted_and_answers_as_itself(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """GET /v1/models lists kind:model, name/model and the aliases; each one answers."""
    await _with_discovered_fake(tmp_path, fake_llm)
    async with serve_api(tmp_path, real_server=True) as api, sdk(api) as client:
        listed = [model.id async for model in client.models.list()]
        answered = {}
        for name in [*listed, "model-b", "default", ""]:
            answer = await client.chat.completions.create(model=name, messages=HI)
            answered[name] = answer.model
    assert listed == ["beamish", "openai_compatible:model-a", "fake/model-a",
                      "openai_compatible:model-b", "fake/model-b", "echo:echo-1"]
    assert answered == {
        "beamish": "echo-1", "default": "echo-1", "": "echo-1", "echo:echo-1": "echo-1",
        "openai_compatible:model-a": "model-a", "fake/model-a": "model-a",
        "openai_compatible:model-b": "model-b", "fake/model-b": "model-b",
        "model-b": "model-b"}


async def test_a_default_provider_without_a_key_is_warned_of_once_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """default_provider openai with no key: one warning naming it and OPENAI_API_KEY."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = make_settings(tmp_path).model_copy(update={"llm": LLMSettings(
        default_provider="openai", default_model="gpt-4o")})
    caplog.set_level(logging.WARNING, logger="beamish")
    async with serve_api(tmp_path, settings=settings, real_server=True) as api, \
            sdk(api) as client:
        answer = await client.chat.completions.create(model="beamish", messages=HI)
        with pytest.raises(openai.NotFoundError, match="no usable provider is of kind 'openai'"):
            await client.chat.completions.create(model="openai:gpt-4o", messages=HI)
        done = await api.http.post(f"/api/sessions/{implicit_session_id('ada')}/completions",
                                   json={"content": "hi"}, headers=api.auth())
    warned = [r.getMessage() for r in caplog.records if "llm.default_provider" in r.getMessage()]
    assert len(warned) == 1
    assert "'openai'" in warned[0]
    assert "OPENAI_API_KEY" in warned[0]
    assert answer.model == "echo-1"
    assert done.json()["offline"] is True
