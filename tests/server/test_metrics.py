"""``/metrics``: Prometheus text, admin only unless public, counting what the server did."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from beamish.request_log import LLMRequestLog, log_llm_request
from beamish.server.metrics import ServerMetrics, _store_stall
from beamish.server.serve import BeamishServer
from tests._serve import serve, token
from tests.channels._phx import PhxClient

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    """The one sample ``name`` with ``labels``."""
    return samples(text)[(name, frozenset(labels.items()))]


async def scrape(server: BeamishServer, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET /metrics from ``server``."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get("/metrics", headers=headers)


def admin() -> dict[str, str]:
    """An admin's Authorization header."""
    return {"Authorization": f"Bearer {token('root', admin=True)}"}


async def test_metrics_need_an_admin_token(beamish: BeamishServer) -> None:
    """No token: 401; a user's token: 403; an admin's: 200 in Prometheus' text format."""
    assert (await scrape(beamish)).status_code == 401
    user = {"Authorization": f"Bearer {token('ada')}"}
    assert (await scrape(beamish, user)).status_code == 403
    answer = await scrape(beamish, admin())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert value(answer.text, "beamish_runtime_up") == 1


async def test_metrics_public_serves_them_without_a_token(tmp_path: Path) -> None:
    """[server] metrics_public: a scraper without a token reads them."""
    async with serve(tmp_path, metrics_public=True) as server:
        answer = await scrape(server)
    assert answer.status_code == 200
    assert value(answer.text, "beamish_runtime_up") == 1


async def test_requests_tokens_and_sessions_are_counted(beamish: BeamishServer) -> None:
    """A /v1 completion shows as an HTTP request, an LLM request, its tokens and a session."""
    headers = {"Authorization": f"Bearer {token('ada')}"}
    async with httpx.AsyncClient(base_url=beamish.url) as http:
        answer = await http.post("/v1/chat/completions", headers=headers, json={
            "messages": [{"role": "user", "content": "one two three"}]})
        missing = await http.get("/api/sessions/nope", headers=headers)
        await http.get("/no/such/path")
    assert answer.status_code == 200
    usage, model = answer.json()["usage"], answer.json()["model"]
    text = (await scrape(beamish, admin())).text
    route = {"route": "/v1/chat/completions", "method": "POST"}
    assert value(text, "beamish_http_requests_total", status="200", **route) == 1
    assert value(text, "beamish_http_request_duration_seconds_count", **route) == 1
    assert value(text, "beamish_http_requests_total", route="/api/sessions/{session_id}",
                 method="GET", status=str(missing.status_code)) == 1
    assert value(text, "beamish_http_requests_total", route="<unmatched>", method="GET",
                 status="404") == 1
    llm = {"provider": "echo", "model": model, "task_type": "chat"}
    assert value(text, "beamish_llm_requests_total", endpoint="openai", outcome="ok",
                 **llm) == 1
    assert value(text, "beamish_llm_tokens_total", kind="prompt",
                 **llm) == usage["prompt_tokens"]
    assert value(text, "beamish_llm_tokens_total", kind="completion",
                 **llm) == usage["completion_tokens"]
    assert value(text, "beamish_llm_request_duration_seconds_count", outcome="ok", **llm) == 1
    assert value(text, "beamish_sessions_live") == 1
    assert value(text, "beamish_usage_recorder_backlog") >= 0
    assert value(text, "beamish_actors", type="UsageRecorderActor") == 1
    assert value(text, "beamish_mailbox_depth_max") >= 0


async def test_sockets_and_joined_channels_are_counted(beamish: BeamishServer) -> None:
    """An open socket with one joined conversation: one socket, one channel."""
    url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?vsn=2.0.0&token={token('ada')}"
    async with connect(url) as ws:
        await PhxClient(ws).join("conversation:c1", {"session_id": "s1"})
        text = (await scrape(beamish, admin())).text
    assert value(text, "beamish_sockets_open") == 1
    assert value(text, "beamish_channels_joined") == 1


def test_a_stalled_store_shows_how_long_it_has_stalled() -> None:
    """stalled_since set: stalled 1 and its age; None: 0; a store without it: no gauge."""

    class Stalled:
        stalled_since: float | None = time.monotonic() - 5

    stalled = {family.name: family.samples[0].value for family in _store_stall(Stalled())}
    assert stalled["beamish_store_stalled"] == 1
    assert stalled["beamish_store_stalled_seconds"] >= 5
    Stalled.stalled_since = None
    assert [f.samples[0].value for f in _store_stall(Stalled())] == [0, 0]
    assert list(_store_stall(object())) == []


def test_llm_requests_are_counted_even_with_the_log_off() -> None:
    """The observer sees every entry, whatever the request log's level."""
    metrics = ServerMetrics()
    stop = metrics.watch_llm_requests()
    try:
        log_llm_request(LLMRequestLog(
            request_id="r", user_id="u", session_id="s", endpoint="channel", stream=True,
            task_type="chat", provider=None, model=None, latency_ms=20, prompt_tokens=0,
            completion_tokens=0, outcome="error", error="ProviderError"))
    finally:
        stop()
    text = metrics.exposition().decode()
    assert value(text, "beamish_llm_requests_total", provider="none", model="none",
                 task_type="chat", endpoint="channel", outcome="error") == 1
    assert value(text, "beamish_llm_request_duration_seconds_sum", provider="none",
                 model="none", task_type="chat", outcome="error") == pytest.approx(0.02)
