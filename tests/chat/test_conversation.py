"""The conversation channel end to end: a real BeamishServer, real WebSockets, the echo provider."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from beamish.auth import TokenSigner
from beamish.chat.conversation import ConversationChannel
from beamish.llm.providers.base import ChatRequest, ProviderChunk, Usage
from beamish.llm.providers.echo import EchoProvider
from beamish.runtime import KILL, exit, on_exit
from beamish.server.serve import BeamishServer
from beamish.sessions.context import MAX_CACHED_TASK_TYPES
from tests._serve import SECRET, serve
from tests.channels._phx import PhxClient, error, ok

pytestmark = pytest.mark.anyio





def _url(beamish: BeamishServer, user: str) -> str:
    token = TokenSigner(SECRET).issue(user)
    return f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token}&vsn=2.0.0"


async def _answer(client: PhxClient, topic: str, request_id: str) -> tuple[str, dict[str, Any]]:
    """Collect token deltas until done (or error) for ``request_id``."""
    text = ""
    while True:
        frame = await client.expect(lambda f: f[2] == topic and isinstance(f[4], dict)
                                    and f[4].get("request_id") == request_id
                                    and f[3] in ("token", "done", "error"))
        if frame[3] == "token":
            text += frame[4]["delta"]
            continue
        return text, {"event": frame[3], **frame[4]}


async def test_a_message_streams_tokens_then_done_with_usage(beamish: BeamishServer) -> None:
    """message → ok {request_id} → token pushes → done with usage, provider and provenance."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, reply = await client.join("conversation:c1", {"session_id": "s1"})
        assert reply[4] == ok({"conversation_id": "c1", "session_id": "s1", "last_id": 0})
        answer = await client.call("conversation:c1", "message", {"content": "hello world"},
                                   join_ref)
        request_id = answer[4]["response"]["request_id"]
        text, done = await _answer(client, "conversation:c1", request_id)
    assert done["event"] == "done"
    assert "hello world" in text
    assert done["provider"] == "echo"
    assert done["offline"] is True
    assert done["usage"]["completion_tokens"] > 0
    assert done["config"]["model"] in ("system_default", "first_available")
    usage = await beamish.runtime.store.session_totals("ada", "s1")
    assert usage.requests == 1  # durable before done was sent


async def test_each_message_writes_one_structured_log_line(
        beamish: BeamishServer, caplog: pytest.LogCaptureFixture) -> None:
    """A channel message ends with one JSON log line: ids, provider, tokens, outcome."""
    caplog.set_level(logging.INFO, logger="beamish.server.llm_requests")
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        rid = (await client.call("conversation:c1", "message", {"content": "log me"},
                                 join_ref))[4]["response"]["request_id"]
        await _answer(client, "conversation:c1", rid)
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "beamish.server.llm_requests"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["request_id"], line["user_id"], line["session_id"]) == (rid, "ada", "s1")
    assert (line["endpoint"], line["provider"], line["outcome"]) == ("channel", "echo", "ok")
    assert line["completion_tokens"] > 0
    assert "log me" not in caplog.text  # no message content in logs


async def test_history_is_sent_to_the_provider_and_replayed_on_rejoin(
        beamish: BeamishServer) -> None:
    """The second answer sees the first exchange; a rejoin with last_seen_id gets what it missed."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1")
        for content in ("first question", "second question"):
            rid = (await client.call("conversation:c1", "message", {"content": content},
                                     join_ref))[4]["response"]["request_id"]
            await _answer(client, "conversation:c1", rid)
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        _, reply = await client.join("conversation:c1", {"last_seen_id": 2})
        assert reply[4]["response"]["last_id"] == 4
        history = await client.event("conversation:c1", "history")
    assert [m["id"] for m in history[4]["messages"]] == [3, 4]
    assert history[4]["messages"][0]["content"] == "second question"


async def test_set_preference_changes_the_next_answer_at_once(beamish: BeamishServer) -> None:
    """set_preference stores the default; get_config and the next message use it."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1")
        reply = await client.call("conversation:c1", "set_preference",
                                  {"provider": "echo", "model": "echo-fancy"}, join_ref)
        assert reply[4]["status"] == "ok"
        assert reply[4]["response"]["model"] == "echo-fancy"
        assert reply[4]["response"]["sources"]["model"] == "user_default"
        rid = (await client.call("conversation:c1", "message", {"content": "hi"},
                                 join_ref))[4]["response"]["request_id"]
        _, done = await _answer(client, "conversation:c1", rid)
    assert done["model"] == "echo-fancy"


async def test_bad_payloads_get_clear_errors_and_the_channel_keeps_serving(
        beamish: BeamishServer) -> None:
    """Missing content, wrong types and unknown events are error replies, not crashes."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1")
        empty = await client.call("conversation:c1", "message", {}, join_ref)
        assert empty[4]["status"] == "error"
        assert empty[4]["response"]["reason"] == "bad_request"
        assert "content" in empty[4]["response"]["detail"]
        wrong = await client.call("conversation:c1", "message",
                                  {"content": "x", "overrides": {"temperature": 9}}, join_ref)
        assert "temperature" in wrong[4]["response"]["detail"]
        unknown = await client.call("conversation:c1", "dance", {}, join_ref)
        assert unknown[4] == error({"reason": "unknown event",
                                    "detail": "conversation:c1 does not handle event 'dance'"})
        usage = await client.call("conversation:c1", "usage", {}, join_ref)
        assert usage[4]["status"] == "ok"


async def test_conversation_and_session_ids_are_per_user(beamish: BeamishServer) -> None:
    """eve joining ada's conversation:default with ada's session id gets her own conversation
    and session; ada's history and usage are untouched, and ada rejoins hers."""
    topic = "conversation:default"
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join(topic, {"session_id": "s1"})
        rid = (await client.call(topic, "message", {"content": "ada's secret"},
                                 join_ref))[4]["response"]["request_id"]
        await _answer(client, topic, rid)
    async with connect(_url(beamish, "eve")) as ws:
        client = PhxClient(ws)
        join_ref, reply = await client.join(topic, {"session_id": "s1", "last_seen_id": 0})
        assert reply[4] == ok({"conversation_id": "default", "session_id": "s1", "last_id": 0})
        rid = (await client.call(topic, "message", {"content": "eve here"},
                                 join_ref))[4]["response"]["request_id"]
        text, done = await _answer(client, topic, rid)
    assert (text, done["event"]) == ("[echo] eve here", "done")
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        _, reply = await client.join(topic, {"session_id": "s1", "last_seen_id": 1})
        assert reply[4]["response"]["last_id"] == 2
        history = await client.event(topic, "history")
    assert [m["content"] for m in history[4]["messages"]] == ["[echo] ada's secret"]
    store = beamish.runtime.store
    assert (await store.session_totals("ada", "s1")).requests == 1
    assert (await store.session_totals("eve", "s1")).requests == 1


async def test_a_joined_session_is_held_until_the_channel_ends(beamish: BeamishServer) -> None:
    """While a channel is joined its session counts as in use (never evicted or expired);
    once the channel has ended it is idle again."""
    idle = beamish.runtime.services.idle
    async with connect(_url(beamish, "ada")) as ws:
        await PhxClient(ws).join("conversation:c1", {"session_id": "s1"})
        assert ("ada", "s1") in idle
        assert idle.last_active(("ada", "s1")) is None  # busy: not a candidate
        (channel,) = [a.ref for a in beamish.runtime.node.actors()
                      if a.type == "ConversationChannel"]
        ended = asyncio.Event()
        on_exit(channel, lambda *_: ended.set())
    await ended.wait()
    assert idle.last_active(("ada", "s1")) is not None


async def test_cancel_stops_the_stream_and_records_partial_usage(beamish: BeamishServer) -> None:
    """cancel answers ok; the stream ends with error "cancelled"; its usage is recorded."""
    long_prompt = " ".join(f"word{n}" for n in range(3000))
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        rid = (await client.call("conversation:c1", "message", {"content": long_prompt},
                                 join_ref))[4]["response"]["request_id"]
        await client.expect(lambda f: f[3] == "token")
        cancel = await client.call("conversation:c1", "cancel", {"request_id": rid}, join_ref)
        assert cancel[4]["status"] in ("ok", "error")  # error only if it had just finished
        _, end = await _answer(client, "conversation:c1", rid)
    if cancel[4]["status"] == "ok":
        assert end == {"event": "error", "request_id": rid, "reason": "cancelled"}
    await beamish.runtime.services.current_recorder().wait_flushed()
    totals = await beamish.runtime.store.session_totals("ada", "s1")
    assert totals.requests == 1


async def test_an_answer_longer_than_the_channel_mailbox_streams_whole(
        beamish: BeamishServer) -> None:
    """A provider faster than the channel is held back by it: every token arrives, then done."""
    words = [f"w{n}" for n in range(3 * ConversationChannel.mailbox_size)]
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        rid = (await client.call("conversation:c1", "message", {"content": " ".join(words)},
                                 join_ref))[4]["response"]["request_id"]
        text, done = await _answer(client, "conversation:c1", rid)
        usage = await client.call("conversation:c1", "usage", {}, join_ref)
    assert done["event"] == "done"
    assert text.split()[1:] == words
    assert usage[4]["response"]["session"]["requests"] == 1


async def test_an_answer_failing_unexpectedly_crashes_only_its_channel(
        beamish: BeamishServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in an answer's task crashes the channel (phx_error); a rejoin serves again."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the stream")

    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        with monkeypatch.context() as patched:
            patched.setattr(beamish.runtime, "stream", broken)
            await client.call("conversation:c1", "message", {"content": "hi"}, join_ref)
            crashed = await client.expect(lambda f: f[3] == "phx_error")
        assert crashed[:3] == [join_ref, join_ref, "conversation:c1"]
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        rid = (await client.call("conversation:c1", "message", {"content": "hi again"},
                                 join_ref))[4]["response"]["request_id"]
        text, done = await _answer(client, "conversation:c1", rid)
    assert (text, done["event"]) == ("[echo] hi again", "done")


async def test_a_killed_channel_stops_its_answers_and_their_usage_is_recorded(
        beamish: BeamishServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed, a channel runs no terminate; its streams are cancelled all the same."""
    async def first_token_then_wait(self: EchoProvider, request: ChatRequest,
                                    ) -> AsyncIterator[ProviderChunk]:
        yield ProviderChunk(text="first ", usage=Usage(prompt_tokens=1, completion_tokens=1))
        await asyncio.Event().wait()  # a provider that goes quiet: only a cancel ends it

    monkeypatch.setattr(EchoProvider, "stream", first_token_then_wait)
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        await client.call("conversation:c1", "message", {"content": "hello"}, join_ref)
        await client.expect(lambda f: f[3] == "token")
        (channel,) = [a.ref for a in beamish.runtime.node.actors()
                      if a.type == "ConversationChannel"]
        exit(channel, KILL)
        await client.expect(lambda f: f[3] == "phx_error")
    await beamish.runtime.services.current_recorder().wait_flushed()
    totals = await beamish.runtime.store.session_totals("ada", "s1")
    assert (totals.requests, totals.completion_tokens) == (1, 1)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ('{"last_seen_id":-1}', "last_seen_id: Input should be greater than or equal to 0"),
        ('{"last_seen_id":1e999}', "last_seen_id: Input should be a valid integer"),
        ('{"last_seen_id":1e300}', "last_seen_id: Input should be a valid integer"),
        ('{"last_seen_id":true}', "last_seen_id: Input should be a valid integer"),
        ('{"last_seen_id":9223372036854775808}', "less than or equal to 9223372036854775807"),
        ('{"session_id":"' + "s" * 300 + '"}', "session_id: String should match pattern"),
        ('{"session_id":"a b\\n"}', "session_id: String should match pattern"),
        ('{"session_id":7}', "session_id: Input should be a valid string"),
    ],
)
async def test_bad_join_params_refuse_the_join_with_bad_request(
        beamish: BeamishServer, caplog: pytest.LogCaptureFixture, params: str,
        detail: str) -> None:
    """Out-of-range, non-integer or overlong params get bad_request, not a join crash."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        await ws.send(f'["1","1","conversation:c1","phx_join",{params}]')
        reply = await client.reply("1")
        assert reply[4]["status"] == "error"
        assert reply[4]["response"]["reason"] == "bad_request"
        assert detail in reply[4]["response"]["detail"]
        _, rejoined = await client.join("conversation:c1", {"last_seen_id": 0})
        assert rejoined[4]["status"] == "ok"  # the socket serves on
    assert "crashed" not in caplog.text


@pytest.mark.parametrize("conversation", ["a b", "x" * 129, "-lead", "é"])
async def test_a_conversation_id_outside_the_id_pattern_is_bad_request(
        beamish: BeamishServer, conversation: str) -> None:
    """The id after conversation: follows the API's session-id pattern, or the join is refused."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        _, reply = await client.join(f"conversation:{conversation}")
    assert reply[4]["status"] == "error"
    assert reply[4]["response"]["reason"] == "bad_request"
    assert len(beamish.history) == 0  # nothing kept under the refused id


async def test_hostile_frames_on_a_real_socket_are_answered_and_nothing_is_kept(
        beamish: BeamishServer, caplog: pytest.LogCaptureFixture) -> None:
    """A lone surrogate deep in a message gets an error reply and the socket serves on; a
    join of a 1 MB topic closes with 1008 and leaves no conversation behind."""
    async with connect(_url(beamish, "ada"), max_size=None) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1")
        nested = "[" * 400 + '"\\ud800"' + "]" * 400
        await ws.send(f'["{join_ref}","70","conversation:c1","message",{{"content":{nested}}}]')
        reply = await client.reply("70")
        assert reply[4]["status"] == "error"
        assert reply[4]["response"]["reason"] == "invalid frame"
        assert "surrogate" in reply[4]["response"]["detail"]
        assert (await client.heartbeat())[4]["status"] == "ok"
        assert len(beamish.history) == 1
        await ws.send(json.dumps(["9", "9", "conversation:" + "x" * 1_000_000, "phx_join", {}]))
        await ws.wait_closed()
    assert ws.close_code == 1008
    assert "topic is 1000013 bytes" in (ws.close_reason or "")
    assert len(beamish.history) == 1
    assert "crashed" not in caplog.text


async def test_a_session_caches_a_bounded_number_of_task_types(beamish: BeamishServer) -> None:
    """get_config for many task types leaves at most MAX_CACHED_TASK_TYPES cached; a task type
    outside the id pattern is bad_request and caches nothing."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c1", {"session_id": "s1"})
        for n in range(MAX_CACHED_TASK_TYPES + 8):
            reply = await client.call("conversation:c1", "get_config",
                                      {"task_type": f"task{n}"}, join_ref)
            assert reply[4]["status"] == "ok"
        bad = await client.call("conversation:c1", "get_config",
                                {"task_type": "t" * 300}, join_ref)
        assert bad[4]["response"]["reason"] == "bad_request"
        info = await beamish.runtime.sessions.get("s1", user_id="ada")
    assert len(info.cached_task_types) == MAX_CACHED_TASK_TYPES
    assert f"task{MAX_CACHED_TASK_TYPES + 7}" in info.cached_task_types


async def test_serve_reads_the_per_user_bounds_from_its_settings(tmp_path: Path) -> None:
    """[server] max_sockets_per_user and max_history_bytes reach the endpoint and history."""
    async with serve(tmp_path, max_sockets_per_user=1, max_history_bytes=4096) as running:
        assert running.history.max_bytes == 4096
        async with connect(_url(running, "ada")):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(_url(running, "ada")):
                    pass
    assert refused.value.response.status_code == 429
