"""A provider whose errors echo parts of its key: every surface tells callers a short typed
error and nothing of the upstream's text; the log has the text, scrubbed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect

from beamish.auth import TokenSigner
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.server.serve import BeamishServer
from beamish.settings import ServerSettings, Settings
from tests.channels._phx import PhxClient
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer, Fault
from tests.server.api._support import (
    ApiServer,
    make_settings,
    parse_sse,
    serve_api,
    watching_llm_log,
)

pytestmark = pytest.mark.anyio

MARK = "upstream-said-this"
"""A word only the upstream's error text holds: a surface showing it shows upstream text."""

ECHOES = (f"{MARK}: Incorrect API key provided: ...{OPENAI_KEY[5:21]}",
          f"{MARK}: key {OPENAI_KEY[:12]}\n{OPENAI_KEY[12:]} was refused")
"""The fake's error bodies: a fragment of the key, and the whole key split by a newline."""


def leaks(text: str) -> bool:
    """Whether 8 characters of the key, or the upstream's text, show in ``text``."""
    compact = "".join(text.replace("\\n", " ").split())
    fragments = (OPENAI_KEY[i:i + 8] for i in range(len(OPENAI_KEY) - 7))
    return MARK in text or any(part in compact for part in fragments)


def llm_settings(fake_llm: FakeLLMServer) -> LLMSettings:
    """The fake upstream as every user's provider, with no retries."""
    return LLMSettings(
        default_provider="openai_compatible", default_model="model-a", max_retries=0,
        providers={"openai_compatible": ProviderSettings(
            base_url=fake_llm.openai_url, api_key=SecretStr(OPENAI_KEY))})


@pytest.fixture
async def api(tmp_path: Path, fake_llm: FakeLLMServer) -> AsyncIterator[ApiServer]:
    """A uvicorn-served API whose users call the fake upstream."""
    settings = make_settings(tmp_path).model_copy(update={"llm": llm_settings(fake_llm)})
    async with serve_api(tmp_path, settings=settings, real_server=True) as server:
        yield server


async def test_session_endpoints_answer_typed_errors_without_upstream_text(
        api: ApiServer, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """Whole, streamed before the first token and broken mid-stream: typed, short, scrubbed."""
    caplog.set_level(logging.WARNING, logger="beamish.llm")
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    url = "/api/sessions/s1/completions"
    async with watching_llm_log() as request_log:
        fake_llm.script(Fault.error(500, message=ECHOES[0]), Fault.error(401, message=ECHOES[1]))
        failed = await api.http.post(url, json={"content": "hi"}, headers=api.auth())
        rejected = await api.http.post(url, json={"content": "hi", "stream": True},
                                       headers=api.auth())
        fake_llm.script(Fault.error_event(after_tokens=1, message=ECHOES[1]))
        broken = await api.http.post(url, json={"content": "a b c", "stream": True},
                                     headers=api.auth())
        lines = await request_log.wait_for(3)
    assert (failed.status_code, failed.json()["error"]) == (502, {
        "type": "provider_error", "code": "provider_unavailable",
        "message": "openai_compatible:model-a (HTTP 500) is unavailable; try again later"})
    assert rejected.status_code == 502
    assert rejected.json()["error"]["code"] == "provider_rejected"
    assert rejected.json()["error"]["message"].count("model-a") == 1
    error = parse_sse(broken.text)[-1]
    assert error.event == "error"
    assert error.json()["error"]["code"] == "provider_unavailable"
    assert "stream broke" in error.json()["error"]["message"]
    for text in (failed.text, rejected.text, broken.text, json.dumps(lines)):
        assert not leaks(text), text
    logged = [r for r in caplog.records if r.levelno == logging.WARNING and MARK in r.message]
    assert len(logged) >= 3
    assert not any(leaks(r.getMessage().replace(MARK, "")) for r in caplog.records)


async def test_v1_answers_openai_shaped_typed_errors_without_upstream_text(
        api: ApiServer, fake_llm: FakeLLMServer) -> None:
    """The SDK raises typed errors whose body is OpenAI's shape with our code, no upstream text."""
    client = openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=api.token(), max_retries=0)
    async with client:
        fake_llm.script(Fault.error(502, message=ECHOES[1]))
        with pytest.raises(openai.APIStatusError) as whole:
            await client.chat.completions.create(
                model="beamish", messages=[{"role": "user", "content": "hi"}])
        fake_llm.script(Fault.error_event(after_tokens=1, message=ECHOES[0]))
        stream = await client.chat.completions.create(
            model="beamish", messages=[{"role": "user", "content": "a b c"}], stream=True)
        with pytest.raises(openai.APIError) as broken:
            async for _ in stream:
                pass
    assert whole.value.status_code == 502
    assert whole.value.body == {
        "message": "openai_compatible:model-a (HTTP 502) is unavailable; try again later",
        "type": "provider_error", "param": None, "code": "provider_unavailable"}
    assert broken.value.body is not None
    assert not leaks(str(whole.value))
    assert not leaks(str(broken.value))
    assert not leaks(json.dumps(broken.value.body))


async def test_the_channel_pushes_a_typed_error_without_upstream_text(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """The conversation's error push is {request_id, reason: code, detail}, with no key."""
    secret = "beamish-test-server-secret-0123456789abcdef"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'serve.db'}",
                        secret_key=SecretStr(secret), llm=llm_settings(fake_llm),
                        server=ServerSettings(port=0))
    fake_llm.script(Fault.error(403, message=ECHOES[1]))
    async with BeamishServer(settings) as running:
        token = TokenSigner(secret).issue("ada")
        url = f"ws://127.0.0.1:{running.port}/socket/websocket?token={token}&vsn=2.0.0"
        async with connect(url) as ws:
            client = PhxClient(ws)
            join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
            reply = await client.call("conversation:c1", "message", {"content": "hi"}, join_ref)
            request_id = reply[4]["response"]["request_id"]
            frame = await client.expect(lambda f: f[3] == "error" and isinstance(f[4], dict)
                                        and f[4].get("request_id") == request_id)
    pushed: dict[str, Any] = frame[4]
    assert pushed == {"request_id": request_id, "reason": "provider_rejected",
                      "detail": "openai_compatible:model-a (HTTP 403) rejected beamish's "
                                "credentials; an administrator can check the provider's "
                                "API key"}
