"""Sessions over HTTP: open, read, close, and session-scoped completions (whole and SSE)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
import pytest

from beamish.store import ProviderRecord
from tests.llm.providers._fake_llm_server import FakeLLMServer, Fault
from tests.server.api._support import (
    ApiServer,
    encrypted,
    make_settings,
    parse_sse,
    register,
    serve_api,
    watching_llm_log,
)

pytestmark = pytest.mark.anyio


async def test_open_get_list_and_close_a_session(api: ApiServer) -> None:
    """A session opened over HTTP is the caller's, listed, readable, then closed (404 after)."""
    opened = await api.http.post("/api/sessions", json={"session_id": "s1"},
                                 headers=api.auth("ada"))
    assert opened.status_code == 201
    assert opened.json()["user_id"] == "ada"
    listed = await api.http.get("/api/sessions", headers=api.auth("ada"))
    assert listed.json() == {"sessions": ["s1"]}
    info = await api.http.get("/api/sessions/s1", headers=api.auth("ada"))
    assert info.json()["usage"] == {"requests": 0, "errors": 0, "prompt_tokens": 0,
                                    "completion_tokens": 0}
    assert (await api.http.delete("/api/sessions/s1", headers=api.auth("ada"))).status_code \
        == 204
    gone = await api.http.get("/api/sessions/s1", headers=api.auth("ada"))
    assert gone.status_code == 404
    assert gone.json()["error"]["type"] == "not_found"


async def test_a_session_without_an_id_gets_a_fresh_one(api: ApiServer) -> None:
    """POST without session_id opens a new session with a generated id."""
    first = (await api.http.post("/api/sessions", json={}, headers=api.auth())).json()
    second = (await api.http.post("/api/sessions", json={}, headers=api.auth())).json()
    assert first["session_id"] != second["session_id"]


async def test_another_users_session_is_out_of_reach(api: ApiServer) -> None:
    """Reading, closing or calling in bob's session id as ada reaches no session of hers
    (404); naming bob answers 403; re-opening the id opens ada's own; bob's is untouched."""
    await api.http.post("/api/sessions", json={"session_id": "bobs"}, headers=api.auth("bob"))
    ada = api.auth("ada")
    missing = [
        await api.http.get("/api/sessions/bobs", headers=ada),
        await api.http.delete("/api/sessions/bobs", headers=ada),
        await api.http.post("/api/sessions/bobs/completions", json={"content": "hi"},
                            headers=ada),
        await api.http.post("/api/sessions/bobs/completions",
                            json={"content": "hi", "stream": True}, headers=ada),
    ]
    assert [a.status_code for a in missing] == [404] * len(missing)
    assert {a.json()["error"]["type"] for a in missing} == {"not_found"}
    forbidden = [
        await api.http.post("/api/sessions", json={"user_id": "bob"}, headers=ada),
        await api.http.get("/api/sessions/bobs?user_id=bob", headers=ada),
        await api.http.delete("/api/sessions/bobs?user_id=bob", headers=ada),
        await api.http.post("/api/sessions/bobs/completions?user_id=bob",
                            json={"content": "hi"}, headers=ada),
    ]
    assert [a.status_code for a in forbidden] == [403] * len(forbidden)
    assert {a.json()["error"]["type"] for a in forbidden} == {"permission_denied"}
    assert api.rt.sessions.open_sessions() == [("bobs", "bob")]
    own = await api.http.post("/api/sessions", json={"session_id": "bobs"}, headers=ada)
    assert (own.status_code, own.json()["user_id"]) == (201, "ada")
    assert api.rt.sessions.open_sessions() == [("bobs", "ada"), ("bobs", "bob")]
    assert (await api.rt.store.usage_totals(user_id="bob")).requests == 0


async def test_two_users_use_the_same_session_id_side_by_side(api: ApiServer) -> None:
    """ada's s1 and bob's s1 are two sessions: each reads, calls in and closes their own."""
    for user in ("ada", "bob"):
        opened = await api.http.post("/api/sessions", json={"session_id": "s1"},
                                     headers=api.auth(user))
        assert (opened.status_code, opened.json()["user_id"]) == (201, user)
    answer = await api.http.post("/api/sessions/s1/completions", json={"content": "hi"},
                                 headers=api.auth("bob"))
    assert answer.status_code == 200
    ada = (await api.http.get("/api/sessions/s1", headers=api.auth("ada"))).json()
    bob = (await api.http.get("/api/sessions/s1", headers=api.auth("bob"))).json()
    assert (ada["user_id"], ada["usage"]["requests"]) == ("ada", 0)
    assert (bob["user_id"], bob["usage"]["requests"]) == ("bob", 1)
    closed = await api.http.delete("/api/sessions/s1", headers=api.auth("ada"))
    assert closed.status_code == 204
    assert api.rt.sessions.open_sessions() == [("s1", "bob")]
    assert (await api.http.get("/api/sessions/s1", headers=api.auth("ada"))).status_code == 404


async def test_an_admin_names_the_user_when_an_id_is_shared(api: ApiServer) -> None:
    """With two users' s1 open, an admin naming no user gets a 409 that says to name one;
    ?user_id= reaches that user's session."""
    for user in ("ada", "bob"):
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth(user))
    shared = await api.http.get("/api/sessions/s1", headers=api.admin())
    assert shared.status_code == 409
    assert shared.json()["error"]["type"] == "conflict"
    assert "name the user" in shared.json()["error"]["message"]
    bobs = await api.http.get("/api/sessions/s1?user_id=bob", headers=api.admin())
    assert bobs.json()["user_id"] == "bob"
    answer = await api.http.post("/api/sessions/s1/completions?user_id=bob",
                                 json={"content": "hi"}, headers=api.admin())
    assert answer.status_code == 200
    assert (await api.rt.store.session_totals("bob", "s1")).requests == 1
    assert (await api.rt.store.session_totals("ada", "s1")).requests == 0
    closed = await api.http.delete("/api/sessions/s1?user_id=ada", headers=api.admin())
    assert closed.status_code == 204
    assert api.rt.sessions.open_sessions() == [("s1", "bob")]


async def test_an_admin_reaches_any_session(api: ApiServer) -> None:
    """An admin opens a session for bob, reads it and calls in it; usage is bob's."""
    opened = await api.http.post("/api/sessions", json={"session_id": "b1", "user_id": "bob"},
                                 headers=api.admin())
    assert opened.json()["user_id"] == "bob"
    answer = await api.http.post("/api/sessions/b1/completions", json={"content": "hi"},
                                 headers=api.admin())
    assert answer.status_code == 200
    assert (await api.rt.store.usage_totals(user_id="bob")).requests == 1
    assert (await api.rt.store.usage_totals(user_id="root")).requests == 0


async def test_implicit_session_ids_are_reserved(api: ApiServer) -> None:
    """Nobody may open a session under the openai. prefix of implicit sessions."""
    refused = await api.http.post("/api/sessions", json={"session_id": "openai.x"},
                                  headers=api.auth())
    assert refused.status_code == 400
    assert "reserved" in refused.json()["error"]["message"]


async def test_a_completion_answers_with_provenance_and_records_usage_once(
        api: ApiServer) -> None:
    """The answer carries the config and each field's source; the ledger counts it once."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    async with watching_llm_log() as log:
        answer = await api.http.post(
            "/api/sessions/s1/completions",
            json={"content": "hello there", "temperature": 0.5, "task_type": "reasoning"},
            headers=api.auth())
    body = answer.json()
    assert answer.status_code == 200
    assert body["text"] == "[echo] hello there"
    assert body["offline"] is True
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert body["config"]["sources"]["temperature"] == "request"
    assert body["config"]["sources"]["timeout_s"] == "system_default"
    assert body["config"]["task_type"] == "reasoning"
    assert answer.headers["x-request-id"] == body["request_id"]
    totals = await api.rt.store.session_totals("ada", "s1")
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (1, 2, 3)
    [line] = log.lines
    assert line["request_id"] == body["request_id"]
    assert (line["outcome"], line["stream"], line["task_type"]) == ("ok", False, "reasoning")


async def test_a_streamed_completion_sends_tokens_then_done(api: ApiServer) -> None:
    """stream=true answers token events then one done event; usage is durable at the end."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    answer = await api.http.post(
        "/api/sessions/s1/completions",
        json={"messages": [{"role": "system", "content": "be brief"},
                           {"role": "user", "content": "one two three"}], "stream": True},
        headers=api.auth())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(answer.text)
    assert [e.event for e in events] == ["token"] * 4 + ["done"]
    assert "".join(e.json()["delta"] for e in events[:-1]) == "[echo] one two three"
    done = events[-1].json()
    assert done["request_id"] == answer.headers["x-request-id"]
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    assert done["config"]["sources"]["model"] == "system_default"
    totals = await api.rt.store.session_totals("ada", "s1")
    assert (totals.requests, totals.completion_tokens) == (1, 4)


async def test_calls_in_a_closed_or_unknown_session_are_404(api: ApiServer) -> None:
    """Whole or streamed, a call in a session that is not open is a 404 JSON error."""
    for stream in (False, True):
        answer = await api.http.post("/api/sessions/nope/completions",
                                     json={"content": "hi", "stream": stream},
                                     headers=api.auth())
        assert answer.status_code == 404
        assert "is not open" in answer.json()["error"]["message"]


@pytest.mark.parametrize(("body", "where"), [
    ({}, "give either messages"),
    ({"content": "hi", "messages": [{"role": "user", "content": "x"}]}, "not both"),
    ({"messages": []}, "body.messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "body.messages.0.role"),
    ({"content": "hi", "temperature": 7}, "body.temperature"),
    ({"content": "hi", "provider": "skynet"}, "body.provider"),
    ({"content": "hi", "surprise": 1}, "body.surprise"),
])
async def test_malformed_completion_bodies_are_422_and_the_server_keeps_serving(
        api: ApiServer, body: dict[str, object], where: str) -> None:
    """Each malformed body gets a 422 naming what was wrong; the next call still works."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    refused = await api.http.post("/api/sessions/s1/completions", json=body,
                                  headers=api.auth())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["type"] == "validation_error"
    assert where in error["message"]
    fine = await api.http.post("/api/sessions/s1/completions", json={"content": "hi"},
                               headers=api.auth())
    assert fine.status_code == 200


async def test_bodies_that_are_not_json_are_422(api: ApiServer) -> None:
    """A body that is not JSON at all is a 422 too, and says so."""
    refused = await api.http.post("/api/sessions", content=b"{not json",
                                  headers={**api.auth(), "Content-Type": "application/json"})
    assert refused.status_code == 422
    assert "JSON" in refused.json()["error"]["message"]


async def _fake_provider_server(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    await register(tmp_path, [ProviderRecord(
        name="fake", kind="openai_compatible", base_url=fake_llm.openai_url,
        api_key_ciphertext=encrypted(fake_llm.openai_key))])


async def test_a_client_that_disconnects_mid_stream_is_recorded_as_cancelled(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Leaving a stream stops the call; its tokens so far are recorded as cancelled."""
    await _fake_provider_server(tmp_path, fake_llm)
    fake_llm.script(Fault.stall(after_tokens=2))
    async with serve_api(tmp_path, real_server=True) as api, watching_llm_log() as log:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        request = {"content": "a b c d e f", "stream": True, "max_retries": 0}
        async with api.http.stream("POST", "/api/sessions/s1/completions", json=request,
                                   headers=api.auth()) as answer:
            seen = ""
            async for chunk in answer.aiter_text():
                seen += chunk
                if seen.count("event: token") == 2:
                    break
        [line] = await log.wait_for(1)
    assert (line["outcome"], line["completion_tokens"]) == ("cancelled", 2)
    async with serve_api(tmp_path) as again:
        totals = await again.rt.store.session_totals("ada", "s1")
    assert (totals.requests, totals.errors, totals.completion_tokens) == (1, 0, 2)


async def test_a_stream_that_breaks_after_its_first_token_ends_with_an_error_event(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """A provider stream cut mid-answer ends with an error event; usage says error."""
    await _fake_provider_server(tmp_path, fake_llm)
    fake_llm.script(Fault.cut(after_tokens=2))
    async with serve_api(tmp_path) as api:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        answer = await api.http.post("/api/sessions/s1/completions",
                                     json={"content": "a b c d", "stream": True,
                                           "max_retries": 0}, headers=api.auth())
        events = parse_sse(answer.text)
        assert [e.event for e in events] == ["token", "token", "error"]
        assert events[-1].json()["error"]["type"] == "provider_error"
        totals = await api.rt.store.session_totals("ada", "s1")
        assert (totals.requests, totals.errors) == (1, 1)


async def test_a_provider_that_fails_before_answering_is_a_502(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """Whole or streamed, a call whose every model fails is a 502, recorded as an error."""
    await _fake_provider_server(tmp_path, fake_llm)
    fake_llm.script(Fault.error(500), Fault.error(500))
    async with serve_api(tmp_path) as api:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        for stream in (False, True):
            answer = await api.http.post(
                "/api/sessions/s1/completions",
                json={"content": "hi", "stream": stream, "max_retries": 0},
                headers=api.auth())
            assert answer.status_code == 502
            assert answer.json()["error"]["type"] == "provider_error"
        totals = await api.rt.store.session_totals("ada", "s1")
        assert (totals.requests, totals.errors) == (2, 2)


async def test_a_rate_limited_provider_is_a_429_with_retry_after(
        tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    """The provider's 429 and its Retry-After reach the client."""
    await _fake_provider_server(tmp_path, fake_llm)
    fake_llm.script(Fault.error(429, retry_after="7"))
    async with serve_api(tmp_path) as api:
        await api.rt.users.set_default("ada", "openai_compatible", "model-a")
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        answer = await api.http.post("/api/sessions/s1/completions",
                                     json={"content": "hi", "max_retries": 0},
                                     headers=api.auth())
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"


async def test_usage_is_recorded_once_per_request(api: ApiServer) -> None:
    """Five calls, whole and streamed, are five ledger rows."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    for n in range(5):
        answer = await api.http.post("/api/sessions/s1/completions",
                                     json={"content": "hi", "stream": n % 2 == 1},
                                     headers=api.auth())
        assert answer.status_code == 200
    totals = await api.rt.store.usage_totals(user_id="ada")
    assert (totals.requests, totals.prompt_tokens) == (5, 5)


async def test_an_http_client_error_is_not_a_server_error(api: ApiServer) -> None:
    """Unknown routes and wrong methods answer typed errors, not HTML."""
    missing = await api.http.get("/api/nothing-here", headers=api.auth())
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    wrong = await api.http.put("/api/sessions", headers=api.auth())
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "method_not_allowed"


async def test_usage_backpressure_is_a_503_with_retry_after(tmp_path: Path) -> None:
    """With the database locked and the usage buffer full, a call is refused with 503."""
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={
        "sessions": settings.sessions.model_copy(update={"usage_buffer": 1})})
    async with serve_api(tmp_path, settings=settings) as api:
        await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
        lock = sqlite3.connect(tmp_path / "beamish.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        answers: list[httpx.Response] = []

        async def call() -> None:
            answers.append(await api.http.post("/api/sessions/s1/completions",
                                               json={"content": "held"}, headers=api.auth()))

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            while api.rt.services.current_recorder().buffered == 0:
                await anyio.lowlevel.checkpoint()
            refused = await api.http.post("/api/sessions/s1/completions",
                                          json={"content": "more"}, headers=api.auth())
            lock.execute("ROLLBACK")
        lock.close()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "overloaded"
    assert [a.status_code for a in answers] == [200]
