"""Conversation history: the last messages of each conversation, kept in memory, bounded.

A conversation outlives the channels that join it (a client reconnects and rejoins; a
crashed channel is rejoined), so its history lives here, shared by the conversation channels
of a server through the socket assigns, not in a channel actor. Each message gets the next id
of its conversation, so a rejoining client sends ``last_seen_id`` and gets what it missed.

Every bound is by count and by bytes, since a client chooses both how many conversations it
starts and how long its messages are (options, defaults in brackets):

* ``max_messages`` [50] per conversation — older ones are dropped, and only the kept ones are
  sent to the provider;
* ``max_conversation_bytes`` [256 KiB] per conversation — older messages are dropped until
  the rest fit (the newest is always kept: the provider needs it);
* ``max_conversations`` [10_000] in all, and ``max_conversations_per_user`` [100] — the least
  recently used conversation (of that user, for the second) is forgotten beyond them;
* ``max_bytes`` [64 MiB] in all — least recently used conversations are forgotten until the
  rest fit.

Sizes count the UTF-8 bytes of each message's content, request id and conversation id,
plus a fixed :data:`ENTRY_OVERHEAD` per message and per conversation for the objects holding
them, so a flood of empty messages weighs too. A forgotten conversation's channels keep the
:class:`Conversation` they hold until they end; a new join starts it afresh. A conversation
belongs to the user who started it; another user cannot read or extend it.

Durable conversations. Given a :class:`~beamish.chat.journal.ConversationJournal`, the
history is the cache in front of the store: every message added is also handed to the
journal (written behind, in group commits), and a conversation that is not kept is loaded
from the store (``load``: its newest messages, within the bounds above) — so a restarted
server, or a conversation forgotten from memory, replays and answers from what was stored.
Beyond the cache's bounds, the stored ones (options, defaults in brackets):
``max_stored_messages`` [1000] and ``max_stored_chars`` [4_000_000] per conversation — a
question beyond them is refused (``ConversationFullError``) —, and
``max_stored_conversations_per_user`` [1000] — a new conversation beyond it is refused
(``ConversationLimitError``). A conversation forgotten by the cache still stores what its
joined channels add; one deleted (``discard``) stores nothing more, and its channels' next
question is refused (``ConversationDeletedError``). Without a journal (tests, scripts)
nothing is stored.

Single-threaded by design (the event loop's): no locks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

from beamish.chat.errors import (
    ConversationDeletedError,
    ConversationFullError,
    ConversationLimitError,
    JournalFullError,
    NothingToRegenerateError,
)
from beamish.chat.journal import ConversationJournal
from beamish.llm.providers.base import ChatMessage, Prompt, Role
from beamish.store.conversation_models import (
    ConversationMessage,
    NewConversationMessage,
    RemovedConversationMessage,
)

DEFAULT_MAX_MESSAGES: Final = 50
DEFAULT_MAX_CONVERSATION_BYTES: Final = 256 * 1024
DEFAULT_MAX_CONVERSATIONS: Final = 10_000
DEFAULT_MAX_CONVERSATIONS_PER_USER: Final = 100
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_STORED_MESSAGES: Final = 1000
DEFAULT_MAX_STORED_CHARS: Final = 4_000_000
DEFAULT_MAX_STORED_CONVERSATIONS_PER_USER: Final = 1000
#: Bytes counted for the objects around each message and each conversation, beyond its text.
ENTRY_OVERHEAD: Final = 128


class HistoryEntry(NamedTuple):
    """One message of a conversation, as ``since`` hands it out."""

    id: int
    role: Role
    content: str
    request_id: str

    def to_json(self) -> dict[str, object]:
        """As pushed to clients."""
        return {"id": self.id, "role": self.role, "content": self.content,
                "request_id": self.request_id}


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode(errors="surrogatepass"))


def _message_size(content: str, request_id: str) -> int:
    return _utf8_size(content) + _utf8_size(request_id) + ENTRY_OVERHEAD


class Conversation:
    """One conversation's owner and last messages."""

    __slots__ = ("_history", "_home", "_limit", "_max", "_next_id", "_prompt", "_request_ids",
                 "_sizes", "chars", "deleted", "key", "owner", "size", "total")

    def __init__(self, owner: str, max_messages: int,
                 max_bytes: int = DEFAULT_MAX_CONVERSATION_BYTES, *,
                 key: tuple[str, str] | None = None,
                 history: ConversationHistory | None = None) -> None:
        self.owner = owner
        self.key = (owner, "") if key is None else key  # (user id, conversation id)
        self._max = max_messages
        self._history = history  # told of every change of size, while it keeps this one
        # Its bounds and journal, also once forgotten (its channels still write through it).
        self._home = history
        #: Deleted (``ConversationHistory.discard``): nothing more is stored of it.
        self.deleted = False
        # Each kept message once, as the provider reads it: rebuilding the whole prompt for
        # every message cost more than the rest of a chat round trip. Beside it, each one's
        # request id and size; its id needs no room, since the kept ones are consecutive,
        # ending at _next_id - 1. (Lists, not deques: an empty deque costs ~600 bytes, and
        # most conversations of connected clients are short; trimming max_messages is cheap.)
        self._prompt: list[ChatMessage] = []
        self._request_ids: list[str] = []
        self._sizes: list[int] = []
        self._next_id = 1
        #: Bytes this conversation counts for (see the module docstring).
        self.size = _utf8_size(self.key[1]) + _utf8_size(owner) + ENTRY_OVERHEAD
        self._limit = self.size + max_bytes  # the size beyond which old messages go
        #: Every message of the conversation (kept or not, as stored) and their characters.
        self.total = 0
        self.chars = 0

    def add(self, role: Role, content: str, request_id: str) -> int:
        """Append a message, dropping the oldest beyond the bounds; return its id."""
        before = self.size
        size = _message_size(content, request_id)
        self._prompt.append(ChatMessage(role=role, content=content))
        self._request_ids.append(request_id)
        self._sizes.append(size)
        self.size += size
        while len(self._prompt) > 1 and (
                len(self._prompt) > self._max or self.size > self._limit):
            del self._prompt[0], self._request_ids[0]
            self.size -= self._sizes.pop(0)
        message_id = self._next_id
        self._next_id += 1
        self.total += 1
        self.chars += len(content)
        if self._history is not None:
            self._history._resized(self, self.size - before)
        return message_id

    def store(self, message_id: int, role: Role, content: str, request_id: str,
              **answer: str | int | None) -> None:
        """Hand a message added as ``message_id`` to the history's journal, if it has one
        (``answer``: its provider, model, prompt and completion tokens, finish reason)."""
        journal = None if self._home is None or self.deleted else self._home.journal
        if journal is not None and role != "system":
            journal.write(NewConversationMessage(
                self.key[0], self.key[1], message_id, role, content, request_id,
                datetime.now(UTC), **answer))  # type: ignore[arg-type]

    def check_room(self, chars: int) -> None:
        """Raise ``ConversationFullError`` unless a question of ``chars`` characters and its
        answer fit the stored bounds (see the module docstring), ``JournalFullError`` while
        the journal is full, ``ConversationDeletedError`` once it was deleted."""
        history = self._home
        if history is None:
            return
        if self.deleted:
            raise ConversationDeletedError(
                "this conversation was deleted; start a new one")
        if self.total + 2 > history.max_stored_messages:
            raise ConversationFullError(
                f"this conversation holds {self.total} messages, the most one may hold is "
                f"{history.max_stored_messages}; start a new conversation")
        if self.chars + chars > history.max_stored_chars:
            raise ConversationFullError(
                f"this conversation holds {self.chars} characters, the most one may hold is "
                f"{history.max_stored_chars}; start a new conversation")
        history._check_journal()

    def remove_last_answer(self) -> int | None:
        """Drop the last message if it is an answer (to ask its question again); return its
        id (the next message takes it) or None when the last message is the question.

        Raises:
            NothingToRegenerateError: the conversation has no question kept.
            JournalFullError: the journal is full.
            ConversationDeletedError: it was deleted.
        """
        prompt = self._prompt
        if self.deleted:
            raise ConversationDeletedError("this conversation was deleted; start a new one")
        if self._home is not None:
            self._home._check_journal()
        if not any(message.role == "user" for message in prompt):
            raise NothingToRegenerateError(
                "this conversation has no question to answer again; send one first")
        if prompt[-1].role != "assistant":
            return None
        before = self.size
        removed = prompt.pop()
        del self._request_ids[-1]
        self.size -= self._sizes.pop()
        self._next_id -= 1
        self.total -= 1
        self.chars -= len(removed.content)
        if self._history is not None:
            self._history._resized(self, self.size - before)
        if self._home is not None and self._home.journal is not None:
            self._home.journal.write(RemovedConversationMessage(*self.key, self._next_id))
        return self._next_id

    def seed(self, messages: Sequence[ConversationMessage], total: int, chars: int) -> None:
        """Fill an empty conversation with its stored newest ``messages`` (oldest first) of
        ``total`` in all, holding ``chars`` characters."""
        if messages:
            self._next_id = messages[0].id
        for message in messages:
            self.add(message.role, message.content, message.request_id)
        self.total, self.chars = total, chars

    def since(self, last_seen_id: int) -> list[HistoryEntry]:
        """The kept messages with an id above ``last_seen_id``."""
        first_id = self._next_id - len(self._prompt)
        start = max(0, last_seen_id + 1 - first_id)
        return [HistoryEntry(first_id + i, message.role, message.content, request_id)
                for i, (message, request_id) in enumerate(
                    zip(self._prompt[start:], self._request_ids[start:], strict=True), start)]

    def prompt(self) -> Prompt:
        """The kept messages, oldest first, as the provider reads them."""
        return Prompt.trusted(self._prompt)  # each made by add

    @property
    def last_id(self) -> int:
        """The id of the newest message (0 when empty)."""
        return self._next_id - 1


class ConversationHistory:
    """Every live conversation's history, bounded by count and bytes (see the module docs)."""

    def __init__(
        self,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        max_conversations_per_user: int = DEFAULT_MAX_CONVERSATIONS_PER_USER,
        max_conversation_bytes: int = DEFAULT_MAX_CONVERSATION_BYTES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        journal: ConversationJournal | None = None,
        max_stored_messages: int = DEFAULT_MAX_STORED_MESSAGES,
        max_stored_chars: int = DEFAULT_MAX_STORED_CHARS,
        max_stored_conversations_per_user: int = DEFAULT_MAX_STORED_CONVERSATIONS_PER_USER,
    ) -> None:
        if min(max_messages, max_conversations, max_conversations_per_user,
               max_conversation_bytes, max_bytes) < 1:
            raise ValueError("max_messages, max_conversations, max_conversations_per_user, "
                             "max_conversation_bytes and max_bytes must be at least 1")
        self.max_messages = max_messages
        self.max_conversations = max_conversations
        self.max_conversations_per_user = max_conversations_per_user
        self.max_conversation_bytes = max_conversation_bytes
        self.max_bytes = max_bytes
        #: Where messages are stored (None: only kept here).
        self.journal = journal
        self.max_stored_messages = max_stored_messages
        self.max_stored_chars = max_stored_chars
        self.max_stored_conversations_per_user = max_stored_conversations_per_user
        # Least recently used first; keyed by (user id, conversation id): ids are per user.
        self._conversations: OrderedDict[tuple[str, str], Conversation] = OrderedDict()
        self._per_user: dict[str, int] = {}  # an entry only while the user has conversations
        #: Bytes of every kept conversation (see the module docstring).
        self.size = 0

    def open(self, conversation_id: str, user_id: str) -> Conversation:
        """``user_id``'s conversation of that id (created if new)."""
        key = (user_id, conversation_id)
        conversations = self._conversations
        conversation = conversations.get(key)
        if conversation is not None:
            conversations.move_to_end(key)
            return conversation
        if self._per_user.get(user_id, 0) >= self.max_conversations_per_user:
            self._forget(next(kept for kept, _ in conversations.items() if kept[0] == user_id))
        conversation = Conversation(user_id, self.max_messages, self.max_conversation_bytes,
                                    key=key, history=self)
        conversations[key] = conversation
        self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        self.size += conversation.size
        self._trim(keep=conversation)
        return conversation

    async def load(self, conversation_id: str, user_id: str) -> Conversation:
        """``user_id``'s conversation of that id: the kept one, else the stored one (its
        newest messages), else a new one — refused with ``ConversationLimitError`` when the
        user has ``max_stored_conversations_per_user`` stored. Store errors propagate."""
        kept = self.find(conversation_id, user_id)
        if kept is not None or self.journal is None:
            return kept if kept is not None else self.open(conversation_id, user_id)
        journal = self.journal
        await journal.flush()  # what was written of it before it was forgotten
        store = journal.store()
        record = await store.get_conversation(user_id, conversation_id)
        if record is None:
            count = await store.count_conversations(user_id)
            if count >= self.max_stored_conversations_per_user:
                raise ConversationLimitError(
                    f"you have {count} conversations, the most one may keep is "
                    f"{self.max_stored_conversations_per_user}; delete some first")
            messages: list[ConversationMessage] = []
        else:
            messages = await store.list_conversation_messages(
                user_id, conversation_id, limit=self.max_messages)
        kept = self.find(conversation_id, user_id)  # loaded by another join meanwhile
        if kept is not None:
            return kept
        conversation = self.open(conversation_id, user_id)
        if record is not None:
            conversation.seed(messages, record.messages, record.characters)
        return conversation

    def _check_journal(self) -> None:
        """Raise ``JournalFullError`` while the journal holds ``max_buffer`` writes."""
        journal = self.journal
        if journal is not None and journal.queued >= journal.max_buffer:
            raise JournalFullError(
                f"{journal.queued} messages are waiting to be stored (the database is slow "
                "or down); send this one again shortly")

    def discard(self, conversation_id: str, user_id: str) -> None:
        """``user_id``'s conversation of that id was deleted: forget it, and its channels
        store nothing more of it (their next question is refused)."""
        conversation = self._conversations.get((user_id, conversation_id))
        if conversation is not None:
            conversation.deleted = True
            self._forget((user_id, conversation_id))

    def find(self, conversation_id: str, user_id: str) -> Conversation | None:
        """``user_id``'s kept conversation of that id, or None (nothing is created)."""
        return self._conversations.get((user_id, conversation_id))

    def of_user(self, user_id: str) -> list[tuple[str, Conversation]]:
        """``user_id``'s kept conversations with their ids, most recently used first."""
        if user_id not in self._per_user:
            return []
        return [(key[1], conversation)
                for key, conversation in reversed(self._conversations.items())
                if key[0] == user_id]

    def users(self) -> int:
        """How many users have a kept conversation."""
        return len(self._per_user)

    def __len__(self) -> int:
        return len(self._conversations)

    def _resized(self, conversation: Conversation, delta: int) -> None:
        """A kept conversation grew or shrank by ``delta`` bytes."""
        if self._conversations.get(conversation.key) is not conversation:
            return  # forgotten meanwhile: its channels still write to it, uncounted
        self._conversations.move_to_end(conversation.key)
        self.size += delta
        self._trim(keep=conversation)

    def _trim(self, keep: Conversation) -> None:
        """Forget the least recently used conversations, never ``keep``, beyond the bounds."""
        conversations = self._conversations
        while len(conversations) > self.max_conversations or self.size > self.max_bytes:
            oldest = next(iter(conversations))
            if conversations[oldest] is keep:
                break  # the only one left: bounded by max_conversation_bytes
            self._forget(oldest)

    def _forget(self, key: tuple[str, str]) -> None:
        conversation = self._conversations.pop(key)
        conversation._history = None
        self.size -= conversation.size
        left = self._per_user[conversation.owner] - 1
        if left:
            self._per_user[conversation.owner] = left
        else:
            del self._per_user[conversation.owner]
