"""The chat product's errors.

::

    ChatError
    ├── ConversationLimitError     the user has as many stored conversations as allowed
    ├── ConversationFullError      the conversation holds as many messages (or characters)
    │                              as allowed
    ├── ConversationDeletedError   the conversation was deleted while joined
    ├── JournalFullError           too many messages wait to be stored (the store is slow or
    │                              down): try again shortly
    └── NothingToRegenerateError   the conversation has no question to answer again
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of the chat product's errors; ``reason`` is the channel's reply reason."""

    reason = "failed"


class ConversationLimitError(ChatError):
    """A new conversation would pass the user's stored conversations' bound."""

    reason = "too_many_conversations"


class ConversationFullError(ChatError):
    """A message would pass the conversation's bound of messages or characters."""

    reason = "conversation_full"


class ConversationDeletedError(ChatError):
    """A message to a conversation deleted while its channel was joined."""

    reason = "not_found"


class JournalFullError(ChatError):
    """The write-behind buffer of messages is full."""

    reason = "busy"


class NothingToRegenerateError(ChatError):
    """Regenerate asked of a conversation without a question."""

    reason = "bad_request"


__all__ = ["ChatError", "ConversationDeletedError", "ConversationFullError",
           "ConversationLimitError", "JournalFullError", "NothingToRegenerateError"]
