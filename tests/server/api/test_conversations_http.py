"""The caller's conversations over HTTP: list, show, rename, rate, delete; one's own only."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from websockets.asyncio.client import connect

from beamish.server.serve import BeamishServer
from beamish.store.conversation_models import MessageRole, NewConversationMessage
from tests._serve import token
from tests.channels._phx import PhxClient
from tests.server.api._support import ApiServer

pytestmark = pytest.mark.anyio

BASE = "/api/conversations"


def _message(conversation: str, message_id: int, content: str) -> NewConversationMessage:
    role: MessageRole = "user" if message_id % 2 else "assistant"
    return NewConversationMessage("ada", conversation, message_id, role, content,
                                  f"r-{conversation}-{message_id}", datetime.now(UTC))


async def test_list_show_rename_rate_and_delete(api: ApiServer) -> None:
    """Ada lists, shows, renames, rates and deletes her conversation; each step says so."""
    await api.rt.store.write_conversations([_message("c1", 1, "hello"),
                                            _message("c1", 2, "hi")])
    listed = (await api.http.get(BASE, headers=api.auth())).json()["conversations"]
    assert [(c["conversation_id"], c["title"], c["first_question"], c["messages"])
            for c in listed] == [("c1", None, "hello", 2)]
    shown = (await api.http.get(f"{BASE}/c1", headers=api.auth())).json()
    assert [(m["id"], m["role"], m["content"]) for m in shown["messages"]] == [
        (1, "user", "hello"), (2, "assistant", "hi")]
    renamed = await api.http.put(f"{BASE}/c1/title", headers=api.auth(),
                                 json={"title": "  Greetings "})
    assert (renamed.status_code, renamed.json()["title"]) == (200, "Greetings")
    rated = await api.http.put(f"{BASE}/c1/messages/2/rating", headers=api.auth(),
                               json={"rating": "up"})
    assert rated.json()["rating"] == "up"
    cleared = await api.http.put(f"{BASE}/c1/messages/2/rating", headers=api.auth(),
                                 json={"rating": None})
    assert cleared.json()["rating"] is None
    question = await api.http.put(f"{BASE}/c1/messages/1/rating", headers=api.auth(),
                                  json={"rating": "down"})
    assert question.status_code == 404
    assert "only answers can be rated" in question.json()["error"]["message"]
    deleted = await api.http.delete(f"{BASE}/c1", headers=api.auth())
    assert deleted.status_code == 204
    gone = await api.http.get(f"{BASE}/c1", headers=api.auth())
    assert gone.status_code == 404
    assert "you have no conversation 'c1'" in gone.json()["error"]["message"]


async def test_another_users_conversation_is_not_found(api: ApiServer) -> None:
    """Bob cannot show, rename, rate or delete Ada's conversation; it is not his."""
    await api.rt.store.write_conversations([_message("c1", 1, "secret"),
                                            _message("c1", 2, "kept")])
    bob = api.auth("bob")
    assert (await api.http.get(BASE, headers=bob)).json() == {"conversations": []}
    for answer in (await api.http.get(f"{BASE}/c1", headers=bob),
                   await api.http.put(f"{BASE}/c1/title", headers=bob, json={"title": "x"}),
                   await api.http.put(f"{BASE}/c1/messages/2/rating", headers=bob,
                                      json={"rating": "up"}),
                   await api.http.delete(f"{BASE}/c1", headers=bob)):
        assert answer.status_code == 404
    assert len(await api.rt.store.list_conversation_messages("ada", "c1")) == 2


async def test_bad_input_gets_a_clear_error(api: ApiServer) -> None:
    """A blank title, an unknown rating and a malformed id are 422s naming the field."""
    blank = await api.http.put(f"{BASE}/c1/title", headers=api.auth(), json={"title": "  "})
    assert blank.status_code == 422
    assert "title" in blank.text
    rating = await api.http.put(f"{BASE}/c1/messages/2/rating", headers=api.auth(),
                                json={"rating": "meh"})
    assert rating.status_code == 422
    bad_id = await api.http.get(f"{BASE}/-bad", headers=api.auth())
    assert bad_id.status_code == 422


async def test_an_answer_just_streamed_is_listed_and_deleting_keeps_the_ledger(
        beamish: BeamishServer) -> None:
    """An answer the channel just finished is there at once (the journal is flushed
    first); deleting the conversation keeps its requests in the usage ledger."""
    url = f"ws://127.0.0.1:{beamish.port}/socket/websocket?token={token('ada')}&vsn=2.0.0"
    async with connect(url) as ws:
        client = PhxClient(ws)
        join_ref, _ = await client.join("conversation:c9", {"session_id": "s9"})
        reply = await client.call("conversation:c9", "message", {"content": "hi"}, join_ref)
        request_id = reply[4]["response"]["request_id"]
        await client.expect(lambda f: f[3] == "done" and f[4]["request_id"] == request_id)
    headers = {"Authorization": f"Bearer {token('ada')}"}
    async with httpx.AsyncClient(base_url=beamish.url) as http:
        shown = (await http.get(f"{BASE}/c9", headers=headers)).json()
        assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
        assert shown["messages"][1]["request_id"] == request_id
        assert (await http.delete(f"{BASE}/c9", headers=headers)).status_code == 204
        assert (await http.get(f"{BASE}/c9", headers=headers)).status_code == 404
    totals = await beamish.runtime.store.usage_totals(user_id="ada")
    assert totals.requests == 1
