"""Conversation history: the last messages of each conversation, kept in memory, bounded.

A conversation outlives the channels that join it (a client reconnects and rejoins; a
crashed channel is rejoined), so its history lives here, shared by the conversation channels
of a server through the socket assigns, not in a channel actor. Each message gets the next id
of its conversation, so a rejoining client sends ``last_seen_id`` and gets what it missed.

Bounds (defaults in brackets): ``max_messages`` [50] per conversation — older ones are
dropped, and only these are sent to the provider; ``max_conversations`` [10_000] — the least
recently used conversation is forgotten beyond it. Conversation ids are per user: user A's
``default`` and user B's ``default`` are two conversations, so no user can read, extend,
refuse or take over another's by naming its id.

Single-threaded by design (the event loop's): no locks.
"""

from __future__ import annotations

from typing import NamedTuple

from cachetools import LRUCache

from beamish.llm.providers.base import ChatMessage, Prompt, Role


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


class Conversation:
    """One conversation's owner and last messages."""

    __slots__ = ("_max", "_next_id", "_prompt", "_request_ids", "owner")

    def __init__(self, owner: str, max_messages: int) -> None:
        self.owner = owner
        self._max = max_messages
        # Each kept message once, as the provider reads it: rebuilding the whole prompt for
        # every message cost more than the rest of a chat round trip. Beside it, each one's
        # request id; its id needs no room, since the kept ones are consecutive, ending at
        # _next_id - 1. (Lists, not deques: an empty deque costs ~600 bytes, and most
        # conversations of connected clients are short; trimming max_messages is cheap.)
        self._prompt: list[ChatMessage] = []
        self._request_ids: list[str] = []
        self._next_id = 1

    def add(self, role: Role, content: str, request_id: str) -> int:
        """Append a message; return its id."""
        self._prompt.append(ChatMessage(role=role, content=content))
        self._request_ids.append(request_id)
        if len(self._prompt) > self._max:
            del self._prompt[0], self._request_ids[0]
        message_id = self._next_id
        self._next_id += 1
        return message_id

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
    """Every live conversation's history, LRU-bounded."""

    def __init__(self, *, max_messages: int = 50, max_conversations: int = 10_000) -> None:
        if max_messages < 1 or max_conversations < 1:
            raise ValueError("max_messages and max_conversations must be at least 1")
        self.max_messages = max_messages
        # Keyed by (user id, conversation id): ids are chosen per user.
        self._conversations: LRUCache[tuple[str, str], Conversation] = LRUCache(
            max_conversations)

    def open(self, conversation_id: str, user_id: str) -> Conversation:
        """``user_id``'s conversation of that id (created if new)."""
        key = (user_id, conversation_id)
        conversation = self._conversations.get(key)
        if conversation is None:
            conversation = Conversation(user_id, self.max_messages)
            self._conversations[key] = conversation
        return conversation

    def __len__(self) -> int:
        return len(self._conversations)
