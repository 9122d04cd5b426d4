"""The conversation methods of ``SqlStore`` (``conversations``, ``conversation_messages``).

A conversation is keyed by (user, conversation id): ids are per user, so every query names
the user and one user never reads, renames or deletes another's conversation. The chat layer
writes messages in batches (``write_conversations``: one transaction per batch, in the
order given, so a regenerated answer's removal comes before its replacement); a batch creates
the conversations it writes to, and touches their ``updated_at``. Deleting a conversation
deletes its messages (not the usage ledger, which keeps every request).

No text here holds a NUL character (U+0000), which PostgreSQL cannot store: a batch with one
would fail whole, every user's messages in it dropped. A user's question with NUL is refused
where it comes in (``beamish.chat.conversation.MessageIn``), a title here; an answer, which
the model wrote and nobody can send again, is stored with each NUL replaced by U+FFFD
(``beamish.store.text``) on both backends, the rest of it readable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from beamish.store._backend import Backend, Executor, utc_now
from beamish.store.conversation_models import (
    MAX_TITLE,
    ConversationMessage,
    ConversationRecord,
    ConversationWrite,
    NewConversationMessage,
)
from beamish.store.errors import NotFoundError
from beamish.store.job_models import Rating
from beamish.store.text import NUL, NUL_PROBLEM, replace_nul

_FIRST_QUESTION_CHARS = 200
_SUMMARY = f"""SELECT c.conversation_id, c.title, c.created_at, c.updated_at,
        (SELECT substr(m.content, 1, {_FIRST_QUESTION_CHARS}) FROM conversation_messages m
            WHERE m.user_id = c.user_id AND m.conversation_id = c.conversation_id
                AND m.role = 'user' ORDER BY m.id LIMIT 1) AS first_question,
        (SELECT count(*) FROM conversation_messages m
            WHERE m.user_id = c.user_id AND m.conversation_id = c.conversation_id) AS messages,
        (SELECT coalesce(sum(length(m.content)), 0) FROM conversation_messages m
            WHERE m.user_id = c.user_id AND m.conversation_id = c.conversation_id)
            AS characters
    FROM conversations c WHERE c.user_id = $1"""
_MESSAGE_COLUMNS = ("id, role, content, request_id, provider, model, prompt_tokens, "
                    "completion_tokens, finish_reason, rating, created_at")
_UPSERT_CONVERSATION = """INSERT INTO conversations
        (user_id, conversation_id, title, created_at, updated_at) VALUES ($1, $2, NULL, $3, $3)
    ON CONFLICT (user_id, conversation_id) DO UPDATE SET updated_at = excluded.updated_at"""
_UPSERT_MESSAGE = """INSERT INTO conversation_messages (user_id, conversation_id, id, role,
        content, request_id, created_at, provider, model, prompt_tokens, completion_tokens,
        finish_reason, rating)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)
    ON CONFLICT (user_id, conversation_id, id) DO UPDATE SET role = excluded.role,
        content = excluded.content, request_id = excluded.request_id,
        created_at = excluded.created_at, provider = excluded.provider,
        model = excluded.model, prompt_tokens = excluded.prompt_tokens,
        completion_tokens = excluded.completion_tokens,
        finish_reason = excluded.finish_reason, rating = NULL"""
_REMOVE_MESSAGE = ("DELETE FROM conversation_messages "
                   "WHERE user_id = $1 AND conversation_id = $2 AND id = $3")


class ConversationQueries(ABC):
    """The conversation methods of ``SqlStore``."""

    @property
    @abstractmethod
    def _conversation_backend(self) -> Backend: ...

    async def write_conversations(self, writes: Sequence[ConversationWrite]) -> None:
        """Apply ``writes`` in order, in one transaction: store each new message (in place of
        a stored one of the same id, whose rating goes with it) and remove each removed one;
        the conversations written to are created if new and their ``updated_at`` set."""
        if not writes:
            return
        now = utc_now()
        touched = {(w.user_id, w.conversation_id) for w in writes}
        async with self._conversation_backend.transaction() as tx:
            await tx.executemany(_UPSERT_CONVERSATION,
                                 [(user, conversation, now) for user, conversation
                                  in sorted(touched)])
            await _apply(tx, writes)

    async def list_conversations(self, user_id: str, *,
                                 limit: int = 100) -> list[ConversationRecord]:
        """``user_id``'s newest ``limit`` conversations, the most recently updated first."""
        rows = await self._conversation_backend.reader.fetch(
            _SUMMARY + f" ORDER BY c.updated_at DESC, c.conversation_id LIMIT {int(limit)}",
            user_id)
        return [ConversationRecord.model_validate(row) for row in rows]

    async def count_conversations(self, user_id: str) -> int:
        """How many conversations ``user_id`` has stored."""
        row = await self._conversation_backend.reader.fetchrow(
            "SELECT count(*) AS n FROM conversations WHERE user_id = $1", user_id)
        return 0 if row is None else int(row["n"])

    async def get_conversation(self, user_id: str,
                               conversation_id: str) -> ConversationRecord | None:
        """``user_id``'s conversation of that id, or None."""
        row = await self._conversation_backend.reader.fetchrow(
            _SUMMARY + " AND c.conversation_id = $2", user_id, conversation_id)
        return None if row is None else ConversationRecord.model_validate(row)

    async def list_conversation_messages(self, user_id: str, conversation_id: str, *,
                                         limit: int = 1000) -> list[ConversationMessage]:
        """The newest ``limit`` messages of the conversation, oldest first (empty if there is
        no such conversation)."""
        rows = await self._conversation_backend.reader.fetch(
            f"""SELECT * FROM (SELECT {_MESSAGE_COLUMNS} FROM conversation_messages
                WHERE user_id = $1 AND conversation_id = $2 ORDER BY id DESC
                LIMIT {int(limit)}) newest ORDER BY id""", user_id, conversation_id)
        return [ConversationMessage.model_validate(row) for row in rows]

    async def rename_conversation(self, user_id: str, conversation_id: str,
                                  title: str) -> ConversationRecord:
        """Give the conversation ``title`` (1 to ``MAX_TITLE`` characters, no NUL);
        raises ``NotFoundError`` if the user has no such conversation."""
        if not 1 <= len(title) <= MAX_TITLE:
            raise ValueError(f"a conversation title is 1 to {MAX_TITLE} characters")
        if NUL in title:
            raise ValueError(f"the title {NUL_PROBLEM}")
        async with self._conversation_backend.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE conversations SET title = $3, updated_at = $4 "
                "WHERE user_id = $1 AND conversation_id = $2 RETURNING conversation_id",
                user_id, conversation_id, title, utc_now())
        if row is None:
            raise NotFoundError(_missing(conversation_id))
        found = await self.get_conversation(user_id, conversation_id)
        if found is None:  # deleted in between
            raise NotFoundError(_missing(conversation_id))
        return found

    async def delete_conversation(self, user_id: str, conversation_id: str) -> None:
        """Delete the conversation and its messages (the usage ledger keeps its requests);
        raises ``NotFoundError`` if the user has no such conversation."""
        async with self._conversation_backend.transaction() as tx:
            await tx.execute("DELETE FROM conversation_messages "
                             "WHERE user_id = $1 AND conversation_id = $2",
                             user_id, conversation_id)
            row = await tx.fetchrow("DELETE FROM conversations WHERE user_id = $1 AND "
                                    "conversation_id = $2 RETURNING conversation_id",
                                    user_id, conversation_id)
        if row is None:
            raise NotFoundError(_missing(conversation_id))

    async def rate_conversation_message(self, user_id: str, conversation_id: str,
                                        message_id: int,
                                        rating: Rating | None) -> ConversationMessage:
        """Set (or with None, clear) the user's rating of one answer; raises
        ``NotFoundError`` if the conversation has no answer of that id."""
        async with self._conversation_backend.transaction() as tx:
            row = await tx.fetchrow(
                f"""UPDATE conversation_messages SET rating = $4
                    WHERE user_id = $1 AND conversation_id = $2 AND id = $3
                        AND role = 'assistant' RETURNING {_MESSAGE_COLUMNS}""",
                user_id, conversation_id, message_id, rating)
        if row is None:
            raise NotFoundError(f"conversation {conversation_id!r} has no answer with id "
                                f"{message_id}; only answers can be rated")
        return ConversationMessage.model_validate(row)


async def _apply(tx: Executor, writes: Sequence[ConversationWrite]) -> None:
    """Run the writes in order, consecutive new messages in one ``executemany``."""
    added: list[tuple[object, ...]] = []
    for write in writes:
        if isinstance(write, NewConversationMessage):
            added.append(_message_row(write))
            continue
        if added:
            await tx.executemany(_UPSERT_MESSAGE, added)
            added = []
        await tx.execute(_REMOVE_MESSAGE, write.user_id, write.conversation_id, write.id)
    if added:
        await tx.executemany(_UPSERT_MESSAGE, added)


def _message_row(m: NewConversationMessage) -> tuple[object, ...]:
    created: datetime = m.created_at
    # A model's answer (and what its provider said of it) with NUL in it is stored with
    # U+FFFD in its place; a question never holds one (MessageIn refuses it).
    return (m.user_id, m.conversation_id, m.id, m.role, replace_nul(m.content),
            m.request_id, created, m.provider, _replaced(m.model), m.prompt_tokens,
            m.completion_tokens, _replaced(m.finish_reason))


def _replaced(text: str | None) -> str | None:
    return None if text is None else replace_nul(text)


def _missing(conversation_id: str) -> str:
    return (f"you have no conversation {conversation_id!r}; list yours with "
            "GET /api/conversations")


__all__ = ["ConversationQueries"]
