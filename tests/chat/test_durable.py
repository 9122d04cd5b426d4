"""Durable conversations: a real BeamishServer on a SQLite file, restarted, real WebSockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from beamish.chat.journal import ConversationJournal
from beamish.runtime import Node
from beamish.server.serve import BeamishServer
from beamish.store import open_store
from beamish.store.conversation_models import NewConversationMessage
from tests._serve import serve, token
from tests.channels._phx import PhxClient, error

pytestmark = pytest.mark.anyio

TOPIC = "conversation:trip"


def _url(server: BeamishServer, user: str) -> str:
    return f"ws://127.0.0.1:{server.port}/socket/websocket?token={token(user)}&vsn=2.0.0"


async def _say(client: PhxClient, join_ref: str, event: str,
               payload: dict[str, Any]) -> dict[str, Any]:
    """Send ``event`` and return its answer's ``done`` (or ``error``) payload."""
    reply = await client.call(TOPIC, event, payload, join_ref)
    assert reply[4]["status"] == "ok", reply
    request_id = reply[4]["response"]["request_id"]
    frame = await client.expect(lambda f: f[2] == TOPIC and f[3] in ("done", "error")
                                and f[4].get("request_id") == request_id)
    return {"event": frame[3], **frame[4]}


async def test_a_restart_keeps_the_history_its_replay_and_the_providers_context(
        tmp_path: Path) -> None:
    """After a restart on the same database the conversation rejoins at its last id,
    replays what the client missed, and the provider is sent the stored history."""
    async with serve(tmp_path) as server, connect(_url(server, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join(TOPIC, {"session_id": "s1"})
        first = await _say(client, join_ref, "message", {"content": "pack the tent"})
        assert (first["event"], first["message_id"]) == ("done", 2)
    async with serve(tmp_path) as server, connect(_url(server, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, reply = await client.join(TOPIC, {"session_id": "s1", "last_seen_id": 1})
        assert reply[4]["response"]["last_id"] == 2
        history = await client.expect(lambda f: f[3] == "history")
        assert [(m["id"], m["role"], m["content"]) for m in history[4]["messages"]] == [
            (2, "assistant", "[echo] pack the tent")]
        second = await _say(client, join_ref, "message", {"content": "and the stove"})
        # Prompt tokens count the whole history: the question, its answer, the new one.
        assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"] + 3
        assert second["message_id"] == 4
    async with open_store(f"sqlite:///{tmp_path / 'serve.db'}") as store:
        stored = await store.list_conversation_messages("ada", "trip")
    assert [(m.id, m.role) for m in stored] == [(1, "user"), (2, "assistant"), (3, "user"),
                                                (4, "assistant")]
    assert (stored[1].provider, stored[1].model, stored[1].finish_reason) == (
        "echo", "echo-1", "stop")
    assert stored[1].completion_tokens == first["usage"]["completion_tokens"]
    assert stored[1].request_id == first["request_id"]


async def test_regenerate_replaces_the_last_answer_and_keeps_the_question_once(
        beamish: BeamishServer) -> None:
    """regenerate answers the last question again: the new answer takes the old one's id,
    the store holds the question once and the new answer only."""
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join(TOPIC, {"session_id": "s1"})
        refused = await client.call(TOPIC, "regenerate", {}, join_ref)
        assert refused[4] == error({"reason": "bad_request", "detail": (
            "this conversation has no question to answer again; send one first")})
        old = await _say(client, join_ref, "message", {"content": "name a river"})
        new = await _say(client, join_ref, "regenerate", {})
        assert new["message_id"] == old["message_id"] == 2
        assert new["request_id"] != old["request_id"]
    history = beamish.history
    assert history.journal is not None
    await history.journal.flush()
    stored = await beamish.runtime.store.list_conversation_messages("ada", "trip")
    assert [(m.id, m.role, m.request_id) for m in stored] == [
        (1, "user", stored[0].request_id), (2, "assistant", new["request_id"])]


async def test_a_conversation_beyond_the_users_bound_is_refused(
        beamish: BeamishServer) -> None:
    """A new conversation past max_stored_conversations_per_user is refused with a reason
    and a detail saying what to do; a stored one still joins."""
    beamish.history.max_stored_conversations_per_user = 1
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join(TOPIC, {"session_id": "s1"})
        await _say(client, join_ref, "message", {"content": "one"})
        assert beamish.history.journal is not None
        await beamish.history.journal.flush()
        _, refused = await client.join("conversation:other", {})
        assert refused[4] == error({"reason": "too_many_conversations", "detail": (
            "you have 1 conversations, the most one may keep is 1; delete some first")})


async def test_a_full_conversation_refuses_the_next_question(beamish: BeamishServer) -> None:
    """A question that would pass max_stored_messages is refused (conversation_full)."""
    beamish.history.max_stored_messages = 3
    async with connect(_url(beamish, "ada")) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join(TOPIC, {"session_id": "s1"})
        await _say(client, join_ref, "message", {"content": "one"})
        refused = await client.call(TOPIC, "message", {"content": "two"}, join_ref)
        assert refused[4]["status"] == "error"
        assert refused[4]["response"]["reason"] == "conversation_full"
        assert "holds 2 messages, the most one may hold is 3" in (
            refused[4]["response"]["detail"])


async def test_the_journal_leaves_nothing_unwritten_when_its_writer_stops(
        tmp_path: Path) -> None:
    """Writes queued as the node stops are committed, one batch at a time, before its exit
    returns; and flush waits for every write made before it."""
    async with open_store(f"sqlite:///{tmp_path / 'j.db'}") as store:
        journal = ConversationJournal(lambda: store, max_batch=1)
        node = Node()
        node.add_child(journal.child_spec())
        async with node:
            journal.write(_question("ada", "c", 1))
            await journal.flush()
            assert [m.id for m in await store.list_conversation_messages("ada", "c")] == [1]
            for i in range(2, 6):
                journal.write(_question("ada", "c", i))
        assert journal.queued == 0
        assert [m.id for m in await store.list_conversation_messages("ada", "c")] == [
            1, 2, 3, 4, 5]


def _question(user: str, conversation: str, message_id: int) -> NewConversationMessage:
    from datetime import UTC, datetime
    return NewConversationMessage(user, conversation, message_id, "user", f"q{message_id}",
                                  f"r{message_id}", datetime.now(UTC))


async def test_a_message_with_nul_is_refused_and_the_journal_keeps_everyone_s(
        tmp_path: Path, store_url: str) -> None:
    """On both backends a question holding NUL (which PostgreSQL cannot store: its journal
    batch, other users' messages in it, would fail) is ``bad_request`` saying so; the
    user's next question and another user's are stored."""
    async with serve(tmp_path, database_url=store_url) as server, \
            connect(_url(server, "ada")) as ada_ws, connect(_url(server, "bob")) as bob_ws:
        ada, bob = PhxClient(ada_ws), PhxClient(bob_ws)
        ada_ref, _ = await ada.join(TOPIC, {"session_id": "s1"})
        bob_ref, _ = await bob.join(TOPIC, {"session_id": "s1"})
        refused = await ada.call(TOPIC, "message", {"content": "pack\x00it"}, ada_ref)
        assert refused[4]["status"] == "error"
        assert refused[4]["response"]["reason"] == "bad_request"
        assert "holds a NUL character (U+0000)" in refused[4]["response"]["detail"]
        assert (await _say(bob, bob_ref, "message", {"content": "bob's"}))["event"] == "done"
        assert (await _say(ada, ada_ref, "message", {"content": "ada's"}))["event"] == "done"
        assert server.history.journal is not None
        await server.history.journal.flush()
        store = server.runtime.store
        stored = {user: [(m.role, m.content) for m in
                         await store.list_conversation_messages(user, "trip")]
                  for user in ("ada", "bob")}
    assert stored == {"ada": [("user", "ada's"), ("assistant", "[echo] ada's")],
                      "bob": [("user", "bob's"), ("assistant", "[echo] bob's")]}
