"""A provider that hangs or answers garbage, behind a real ``beamish serve``: every call ends as
the typed error the API promises within its timeout, its usage is recorded once, nothing of the
upstream's body reaches the caller, and the server goes on serving. Each fault runs against both
clients of the OpenAI-compatible API: the wire client (kind ``openai_compatible``) and the
official SDK (kind ``openai``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from beamish.llm.providers.bounded import MAX_ANSWER_BYTES
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.server.serve import BeamishServer
from beamish.settings import ServerSettings, Settings
from tests._serve import SECRET, token
from tests.llm.providers._fake_llm_server import OPENAI_KEY, FakeLLMServer, Fault
from tests.server.api._support import parse_sse

pytestmark = [pytest.mark.anyio, pytest.mark.faults, pytest.mark.timeout(30)]

MARK = "upstream-said-this"
"""A word only the upstream's bodies hold: an answer showing it shows the upstream's body."""

BEFORE_ANY_TOKEN = {
    "hang": Fault.hang(),
    "html": Fault.raw(f"<html>{MARK}</html>", content_type="text/html"),
    "bad JSON": Fault.raw(f'{{"{MARK}": '),
    "JSON of another shape": Fault.raw(f'{{"choices": "{MARK}"}}'),
    "usage of another shape": Fault.raw(
        '{"choices": [{"index": 0, "finish_reason": "stop", "message": {"content": "hi"}}], '
        f'"usage": {{"prompt_tokens": "{MARK}", "completion_tokens": -1}}}}'),
    "huge": Fault.huge(MAX_ANSWER_BYTES + (1 << 20)),
}
"""Faults before the answer's first token, for whole and streamed calls alike."""

MID_STREAM = {
    "dropped": Fault.cut(after_tokens=2),
    "stalled": Fault.stall(after_tokens=2),
    "not JSON": Fault.garbage(after_tokens=2, frame=f"data: {{{MARK}\n\n"),
    "a chunk of another shape": Fault.garbage(after_tokens=2,
                                              frame=f'data: {{"choices": "{MARK}"}}\n\n'),
    "a line that is not SSE": Fault.garbage(after_tokens=2, frame=f"{MARK}\n\n"),
}
"""Faults of a stream after two tokens."""


TIMEOUT_S = 2.5
"""The calls' timeout: what a hanging or stalled upstream costs each test, and long enough
that an answer the upstream does give (a huge one included) is read in time on a machine
busy with other work, where 1 s was seen to turn a 502 into a 504."""


@pytest.fixture(params=["openai_compatible", "openai"], ids=["wire", "sdk"])
async def server(request: pytest.FixtureRequest, tmp_path: Path,
                 fake_llm: FakeLLMServer) -> AsyncIterator[BeamishServer]:
    """``beamish serve`` whose every user calls the fake upstream: a timeout of
    ``TIMEOUT_S``, no retries; through the wire client, then the SDK."""
    kind = request.param
    llm = LLMSettings(default_provider=kind, default_model="model-a",
                      timeout_s=TIMEOUT_S, max_retries=0,
                      providers={kind: ProviderSettings(
                          base_url=fake_llm.openai_url, api_key=SecretStr(OPENAI_KEY))})
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'serve.db'}",
                        secret_key=SecretStr(SECRET), llm=llm, server=ServerSettings(port=0))
    async with BeamishServer(settings) as running:
        yield running


async def _ask(server: BeamishServer, *, stream: bool) -> httpx.Response:
    body = {"model": "beamish", "stream": stream,
            "messages": [{"role": "user", "content": "a b c d"}]}
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        return await http.post("/v1/chat/completions", json=body,
                               headers={"Authorization": f"Bearer {token('ada')}"})


def _ledger(server: BeamishServer) -> list[tuple[str, int]]:
    path = server.settings.database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db:  # sqlite3's own with does not close
        rows = db.execute("SELECT status, completion_tokens FROM usage_events ORDER BY id")
        return [(status, tokens) for status, tokens in rows]


async def _still_serving(server: BeamishServer, fake_llm: FakeLLMServer) -> None:
    fake_llm.reset()
    after = await _ask(server, stream=False)
    assert after.status_code == 200, after.text
    assert after.json()["choices"][0]["message"]["content"] == "you said: a b c d"


def _shows_upstream(text: str) -> bool:
    return MARK in text or "xxxxxxxx" in text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("fault", BEFORE_ANY_TOKEN.values(), ids=BEFORE_ANY_TOKEN.keys())
async def test_a_fault_before_the_first_token_is_a_typed_502(
        server: BeamishServer, fake_llm: FakeLLMServer, fault: Fault, stream: bool) -> None:
    """502 (504 for no answer in time) provider_unavailable naming the model once; usage
    recorded once, as an error."""
    fake_llm.script(fault)
    failed = await _ask(server, stream=stream)
    assert failed.status_code == (504 if fault.kind == "hang" else 502), failed.text
    error = failed.json()["error"]
    assert error["code"] == "provider_unavailable"
    assert error["message"].count(f"{server.settings.llm.default_provider}:model-a") == 1
    assert not _shows_upstream(failed.text)
    await _still_serving(server, fake_llm)
    assert _ledger(server) == [("error", 0), ("ok", 6)]


@pytest.mark.parametrize("fault", MID_STREAM.values(), ids=MID_STREAM.keys())
async def test_a_stream_broken_mid_way_ends_with_a_typed_error_event(
        server: BeamishServer, fake_llm: FakeLLMServer, fault: Fault) -> None:
    """The two tokens, then an error event (provider_unavailable); usage: error, 2 tokens."""
    fake_llm.script(fault)
    broken = await _ask(server, stream=True)
    assert broken.status_code == 200
    last = parse_sse(broken.text)[-1]  # OpenAI's in-stream error: a data line, no event name
    assert last.json()["error"]["code"] == "provider_unavailable", broken.text
    assert not _shows_upstream(broken.text)
    await _still_serving(server, fake_llm)
    assert _ledger(server) == [("error", 2), ("ok", 6)]
