"""Durable chat conversations and their messages, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from beamish.store import NotFoundError, Store, UsageEvent
from beamish.store.conversation_models import (
    MessageRole,
    NewConversationMessage,
    RemovedConversationMessage,
)

pytestmark = pytest.mark.anyio


def _message(user: str, conversation: str, message_id: int, content: str,
             **answer: object) -> NewConversationMessage:
    role: MessageRole = "assistant" if answer else "user"
    return NewConversationMessage(user, conversation, message_id, role, content,
                                  f"req-{conversation}-{message_id}", datetime.now(UTC),
                                  **answer)  # type: ignore[arg-type]


ANSWER = {"provider": "echo", "model": "echo-1", "prompt_tokens": 3, "completion_tokens": 4,
          "finish_reason": "stop"}


async def test_a_batch_creates_conversations_and_keeps_each_answers_origin(
        store: Store) -> None:
    """One write stores messages of two conversations; an answer keeps provider, model,
    tokens, request id and finish reason, and the list titles each by its first question."""
    await store.write_conversations([
        _message("ada", "c1", 1, "hello"), _message("ada", "c1", 2, "hi!", **ANSWER),
        _message("ada", "c2", 1, "second one")])
    messages = await store.list_conversation_messages("ada", "c1")
    assert [(m.id, m.role, m.content) for m in messages] == [
        (1, "user", "hello"), (2, "assistant", "hi!")]
    answer = messages[1]
    assert (answer.provider, answer.model, answer.prompt_tokens, answer.completion_tokens,
            answer.finish_reason, answer.request_id) == ("echo", "echo-1", 3, 4, "stop",
                                                         "req-c1-2")
    listed = await store.list_conversations("ada")
    assert {(c.conversation_id, c.first_question, c.messages, c.characters)
            for c in listed} == {("c1", "hello", 2, 8), ("c2", "second one", 1, 10)}
    assert await store.count_conversations("ada") == 2
    assert await store.list_conversations("bob") == []


async def test_a_removed_answer_is_replaced_in_the_order_written(store: Store) -> None:
    """A removal then a new message of the same id, in one batch, leave the new one (its
    rating cleared)."""
    await store.write_conversations([_message("ada", "c", 1, "q"),
                                     _message("ada", "c", 2, "old", **ANSWER)])
    await store.rate_conversation_message("ada", "c", 2, "down")
    await store.write_conversations([RemovedConversationMessage("ada", "c", 2),
                                     _message("ada", "c", 2, "new", **ANSWER)])
    messages = await store.list_conversation_messages("ada", "c")
    assert [(m.id, m.content, m.rating) for m in messages] == [(1, "q", None),
                                                               (2, "new", None)]
    await store.write_conversations([RemovedConversationMessage("ada", "c", 2)])
    assert [m.id for m in await store.list_conversation_messages("ada", "c")] == [1]


async def test_the_newest_messages_are_read_oldest_first(store: Store) -> None:
    """``limit`` keeps the newest messages, in order."""
    await store.write_conversations([_message("ada", "c", i, f"m{i}") for i in range(1, 6)])
    assert [m.id for m in await store.list_conversation_messages("ada", "c", limit=2)] == [
        4, 5]


async def test_rename_and_rating_belong_to_the_owner(store: Store) -> None:
    """A rename and a rating change the owner's conversation; another user's id is not
    found, and only answers take a rating."""
    await store.write_conversations([_message("ada", "c", 1, "q"),
                                     _message("ada", "c", 2, "a", **ANSWER)])
    renamed = await store.rename_conversation("ada", "c", "Trip plans")
    assert (renamed.title, renamed.first_question) == ("Trip plans", "q")
    rated = await store.rate_conversation_message("ada", "c", 2, "up")
    assert rated.rating == "up"
    assert (await store.rate_conversation_message("ada", "c", 2, "down")).rating == "down"
    with pytest.raises(NotFoundError, match="no conversation 'c'"):
        await store.rename_conversation("bob", "c", "mine now")
    with pytest.raises(NotFoundError, match="only answers can be rated"):
        await store.rate_conversation_message("ada", "c", 1, "up")
    with pytest.raises(NotFoundError):
        await store.rate_conversation_message("bob", "c", 2, "up")
    with pytest.raises(ValueError, match="1 to 200 characters"):
        await store.rename_conversation("ada", "c", "")


async def test_deleting_removes_the_messages_but_not_the_ledger(store: Store) -> None:
    """A deleted conversation and its messages are gone; its requests stay in the ledger."""
    await store.record(UsageEvent(request_id="req-c-2", user_id="ada", session_id="c",
                                  provider="echo", model="echo-1", prompt_tokens=3,
                                  completion_tokens=4, status="ok"))
    await store.write_conversations([_message("ada", "c", 1, "q"),
                                     _message("ada", "c", 2, "a", **ANSWER)])
    with pytest.raises(NotFoundError):
        await store.delete_conversation("bob", "c")
    await store.delete_conversation("ada", "c")
    assert await store.get_conversation("ada", "c") is None
    assert await store.list_conversation_messages("ada", "c") == []
    with pytest.raises(NotFoundError):
        await store.delete_conversation("ada", "c")
    totals = await store.usage_totals(user_id="ada")
    assert (totals.requests, totals.completion_tokens) == (1, 4)


async def test_an_answer_with_nul_is_stored_with_u_fffd_and_its_batch_with_it(
        store: Store) -> None:
    """A model's answer holding NUL (which PostgreSQL cannot store) is stored on both
    backends with U+FFFD in its place; the other writes of its batch — another user's
    among them — are stored too."""
    await store.write_conversations([
        _message("ada", "c", 1, "q"),
        _message("ada", "c", 2, "half\x00way", **{**ANSWER, "finish_reason": "st\x00p"}),
        _message("bob", "d", 1, "bob's question")])
    ada = await store.list_conversation_messages("ada", "c")
    assert [(m.id, m.content) for m in ada] == [(1, "q"), (2, "half\ufffdway")]
    assert ada[1].finish_reason == "st\ufffdp"
    assert [m.content for m in await store.list_conversation_messages("bob", "d")] == [
        "bob's question"]


async def test_a_title_with_nul_is_refused_on_both_backends(store: Store) -> None:
    """A rename to a title holding NUL is a ``ValueError`` saying so, and changes
    nothing (PostgreSQL alone would have failed the write)."""
    await store.write_conversations([_message("ada", "c", 1, "q")])
    with pytest.raises(ValueError, match=r"holds a NUL character \(U\+0000\)"):
        await store.rename_conversation("ada", "c", "Trip\x00plans")
    found = await store.get_conversation("ada", "c")
    assert found is not None
    assert found.title is None
