"""The records of durable chat conversations (``Store``'s conversation methods).

Writes are plain tuples (``NewConversationMessage``, ``RemovedConversationMessage``): the chat
channel makes one for every message on its hot path, and the store writes them in batches.
Reads are validated models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from beamish.store.job_models import Rating

MAX_TITLE: Final = 200
"""The longest conversation title, in characters."""

MessageRole = Literal["system", "user", "assistant"]


class NewConversationMessage(NamedTuple):
    """A message to store (or, with the id of a stored one, to store in its place)."""

    user_id: str
    conversation_id: str
    id: int
    role: MessageRole
    content: str
    request_id: str
    created_at: datetime
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class RemovedConversationMessage(NamedTuple):
    """A stored message to remove (an answer being regenerated)."""

    user_id: str
    conversation_id: str
    id: int


ConversationWrite = NewConversationMessage | RemovedConversationMessage


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ConversationRecord(_Model):
    """A stored conversation: its title (the one given, else its first question's start),
    how many messages it holds and how many characters they have."""

    conversation_id: str
    title: str | None = Field(description="the title given by renaming; None until then")
    first_question: str | None = Field(
        description="the start of the conversation's first question (None without one)")
    messages: int = Field(ge=0)
    characters: int = Field(ge=0)
    created_at: datetime
    updated_at: datetime


class ConversationMessage(_Model):
    """A stored message; answers carry where they came from and the user's rating."""

    id: int = Field(ge=1)
    role: MessageRole
    content: str
    request_id: str
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    rating: Rating | None = None
    created_at: datetime


__all__ = ["MAX_TITLE", "ConversationMessage", "ConversationRecord", "ConversationWrite",
           "MessageRole", "NewConversationMessage", "RemovedConversationMessage"]
