"""One structured log line per LLM request, and no secret in any log or answer."""

from __future__ import annotations

import logging
from pathlib import Path

import openai
import pytest

from beamish.server.api import implicit_session_id
from beamish.store import ProviderRecord
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.server.api._support import (
    ApiServer,
    encrypted,
    register,
    serve_api,
    watching_llm_log,
)

pytestmark = pytest.mark.anyio

FIELDS = {"event", "request_id", "user_id", "session_id", "endpoint", "stream", "task_type",
          "provider", "model", "latency_ms", "prompt_tokens", "completion_tokens",
          "outcome", "error"}


async def test_every_llm_request_logs_one_line_with_its_facts(api: ApiServer) -> None:
    """Whole and streamed, sessions and /v1: one JSON line each, matching the answer."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    async with watching_llm_log() as log:
        answers = [
            await api.http.post("/api/sessions/s1/completions", headers=api.auth(),
                                json={"content": "a b", "task_type": "planning"}),
            await api.http.post("/api/sessions/s1/completions", headers=api.auth(),
                                json={"content": "a b", "stream": True}),
            await api.http.post("/v1/chat/completions", headers=api.auth(),
                                json={"messages": [{"role": "user", "content": "a b"}]}),
            await api.http.post("/v1/chat/completions", headers=api.auth(), json={
                "messages": [{"role": "user", "content": "a b"}], "stream": True}),
        ]
    assert [a.status_code for a in answers] == [200] * 4
    assert all(set(line) == FIELDS for line in log.lines)
    facts = [(line["endpoint"], line["stream"], line["session_id"], line["task_type"])
             for line in log.lines]
    implicit = implicit_session_id("ada")
    assert facts == [("sessions", False, "s1", "planning"), ("sessions", True, "s1", "chat"),
                     ("openai", False, implicit, "chat"), ("openai", True, implicit, "chat")]
    assert [line["request_id"] for line in log.lines] == [a.headers["x-request-id"]
                                                         for a in answers]
    assert {(line["user_id"], line["provider"], line["model"], line["outcome"],
             line["prompt_tokens"], line["completion_tokens"], line["error"])
            for line in log.lines} == {("ada", "echo", "echo-1", "ok", 2, 3, None)}
    assert all(isinstance(line["latency_ms"], int) for line in log.lines)


async def test_failed_requests_are_logged_as_errors(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A call whose provider fails is logged with the error's class (never its message)."""
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])
    fake_llm.script(Fault.error(500), Fault.error(500))
    async with serve_api(tmp_path) as api, watching_llm_log() as log:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        for stream in (False, True):
            answer = await api.http.post("/api/sessions/s1/completions", headers=api.auth(),
                                         json={"content": "hi", "stream": stream,
                                               "max_retries": 0})
            assert answer.status_code == 502
    assert [(line["outcome"], line["error"], line["stream"], line["model"])
            for line in log.lines] == [
        ("error", "FallbacksExhaustedError", False, "model-a"),
        ("error", "FallbacksExhaustedError", True, "model-a")]


async def test_no_key_or_token_reaches_any_log(
        tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """Provider keys (stored, sent, quoted back by a provider) and tokens are never logged."""
    caplog.set_level(logging.DEBUG)
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])
    wrong_key = "sk-wrong-key-quoted-back-0123456789"
    async with serve_api(tmp_path, real_server=True) as api, watching_llm_log() as log:
        token, admin = api.token("ada"), api.token("root", admin=True)
        bearer = {"Authorization": f"Bearer {admin}"}
        await api.http.put("/api/users/ada/llm-config", headers=bearer,
                           json={"provider": "openai_compatible", "model": "model-a"})
        await api.http.post("/api/admin/providers", headers=bearer, json={
            "name": "wrong", "kind": "openai_compatible", "base_url": fake_llm.openai_url,
            "api_key": wrong_key})
        checked = await api.http.post("/api/admin/providers/wrong/validate", headers=bearer)
        async with openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key=token,
                                      max_retries=0) as client:
            answer = await client.chat.completions.create(
                model="beamish", messages=[{"role": "user", "content": "hi"}])
            refused = await api.http.post("/v1/chat/completions", json={"messages": []},
                                          headers={"Authorization": f"Bearer {token}x"})
    assert answer.choices[0].message.content == "you said: hi"
    assert checked.json()["status"] == "unauthorized"
    assert refused.status_code == 401
    assert [line["provider"] for line in log.lines] == ["openai_compatible"]
    logged = caplog.text + "\n".join(log.texts)
    for secret in (fake_llm.openai_key, wrong_key, token, admin):
        assert secret not in logged
        assert secret not in checked.text
