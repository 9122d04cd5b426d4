"""The conversation journal's bounds and failures, and the history's regenerate step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from beamish.chat.errors import (
    ConversationDeletedError,
    JournalFullError,
    NothingToRegenerateError,
)
from beamish.chat.history import ConversationHistory
from beamish.chat.journal import ConversationJournal
from beamish.store import open_store
from beamish.store.conversation_models import (
    MessageRole,
    NewConversationMessage,
    RemovedConversationMessage,
)

pytestmark = pytest.mark.anyio


def _write(message_id: int, role: MessageRole = "user") -> NewConversationMessage:
    return NewConversationMessage("ada", "c", message_id, role, "text", f"r{message_id}",
                                  datetime.now(UTC))


async def test_a_full_journal_refuses_questions_and_removals_but_takes_answers(
        tmp_path: Path) -> None:
    """Beyond max_buffer a question and a removal are refused, saying why; an answer is
    taken (it follows a question admitted before)."""
    async with open_store(f"sqlite:///{tmp_path / 'j.db'}") as store:
        journal = ConversationJournal(lambda: store, max_buffer=2)
        journal.write(_write(1))
        journal.write(_write(2))
        with pytest.raises(JournalFullError, match="2 messages are waiting to be stored"):
            journal.write(_write(3))
        with pytest.raises(JournalFullError):
            journal.write(RemovedConversationMessage("ada", "c", 2))
        journal.write(_write(3, "assistant"))
        assert journal.queued == 3
        await journal.flush()  # no writer running: flush writes itself
        assert [m.id for m in await store.list_conversation_messages("ada", "c")] == [1, 2, 3]


async def test_a_batch_the_store_refuses_is_dropped_and_counted(tmp_path: Path) -> None:
    """Writes to a store that is closed fail, are dropped after the attempts, and flush
    returns; the journal counts them."""
    async with open_store(f"sqlite:///{tmp_path / 'j.db'}") as store:
        pass
    journal = ConversationJournal(lambda: store, attempts=2, first_delay=0)
    journal.write(_write(1))
    journal.write(_write(2))
    await journal.flush()
    assert (journal.queued, journal.dropped) == (0, 2)


def test_regenerate_drops_the_last_answer_and_its_id_is_reused() -> None:
    """remove_last_answer pops the answer (the next message takes its id), keeps a question
    that has no answer, and refuses a conversation without a question."""
    history = ConversationHistory()
    conversation = history.open("c", "ada")
    with pytest.raises(NothingToRegenerateError):
        conversation.remove_last_answer()
    conversation.add("user", "q", "r1")
    answer_id = conversation.add("assistant", "a", "r2")
    size = history.size
    assert conversation.remove_last_answer() == answer_id
    assert history.size < size
    assert conversation.remove_last_answer() is None  # the question stays
    assert [(m.id, m.role) for m in conversation.since(0)] == [(1, "user")]
    assert conversation.add("assistant", "again", "r3") == answer_id
    assert [(m.id, m.content) for m in conversation.since(0)] == [(1, "q"), (2, "again")]
    assert (conversation.total, conversation.chars) == (2, 6)


async def test_a_forgotten_conversation_is_still_stored_and_a_deleted_one_is_not(
        tmp_path: Path) -> None:
    """A conversation the cache forgets (LRU) still stores what its channels add; one that
    was deleted stores nothing more and refuses the next question."""
    async with open_store(f"sqlite:///{tmp_path / 'j.db'}") as store:
        history = ConversationHistory(max_conversations=1,
                                      journal=ConversationJournal(lambda: store))
        forgotten = history.open("old", "ada")
        history.open("new", "ada")  # the cache keeps one: "old" is forgotten
        assert history.find("old", "ada") is None
        forgotten.store(forgotten.add("user", "still here", "r1"), "user", "still here", "r1")
        deleted = history.open("gone", "ada")
        history.discard("gone", "ada")
        with pytest.raises(ConversationDeletedError, match="was deleted"):
            deleted.check_room(1)
        deleted.store(deleted.add("user", "lost", "r2"), "user", "lost", "r2")
        assert history.journal is not None
        await history.journal.flush()
        assert [m.content for m in await store.list_conversation_messages("ada", "old")] == [
            "still here"]
        assert await store.get_conversation("ada", "gone") is None
