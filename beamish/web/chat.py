"""What the chat page shows, read from the store: the user's conversations, the open one's
messages (answers with where they came from and the user's rating), and the choices of the
model picker and task type.

The history's journal is flushed first (``ConversationJournal.flush``), so the page shows
every message the conversation channel has handed out, also one answered a moment ago.
"""

from __future__ import annotations

from typing import Any, Final

from beamish.application import Application
from beamish.chat import ConversationHistory
from beamish.server.api.catalog import model_catalog
from beamish.store.conversation_models import ConversationMessage, ConversationRecord

MAX_TITLE: Final = 60
"""Characters of a conversation's title shown in the list."""
UNTITLED: Final = "Untitled conversation"
MAX_LISTED: Final = 100
"""Conversations the list shows (the newest)."""
DEFAULT_SHOWN: Final = 50
"""Messages of the open conversation shown without a history (the newest)."""


async def newest_conversation(runtime: Application, history: ConversationHistory | None,
                              user_id: str) -> str | None:
    """The id of ``user_id``'s most recently updated conversation, if any."""
    await _flush(history)
    newest = await runtime.store.list_conversations(user_id, limit=1)
    return newest[0].conversation_id if newest else None


async def _flush(history: ConversationHistory | None) -> None:
    if history is not None and history.journal is not None:
        await history.journal.flush()


async def chat_context(runtime: Application, history: ConversationHistory | None,
                       user_id: str, current: str) -> dict[str, Any]:
    """The chat template's context for ``user_id`` with ``current`` open."""
    await _flush(history)
    store = runtime.store
    shown = DEFAULT_SHOWN if history is None else history.max_messages
    records = await store.list_conversations(user_id, limit=MAX_LISTED)
    messages = await store.list_conversation_messages(user_id, current, limit=shown)
    conversations = [_listed(record, current) for record in records]
    if not any(c["current"] for c in conversations):
        conversations.insert(0, {"id": current, "title": UNTITLED, "untitled": True,
                                 "current": True})
    return {"conversations": conversations, "messages": [_shown(m) for m in messages],
            "last_id": messages[-1].id if messages else 0,
            "models": await _models(runtime),
            "task_types": sorted({"chat", *runtime.settings.llm.task_types})}


def _listed(record: ConversationRecord, current: str) -> dict[str, Any]:
    """A conversation as the list shows it: its title, else its first question's words."""
    line = " ".join((record.title or record.first_question or "").split())
    title = line if len(line) <= MAX_TITLE else line[:MAX_TITLE - 1] + "…"
    return {"id": record.conversation_id, "title": title or UNTITLED,
            "untitled": not title, "current": record.conversation_id == current}


def _shown(message: ConversationMessage) -> dict[str, Any]:
    meta = ""
    if message.role == "assistant" and message.provider is not None:
        tokens = (message.prompt_tokens or 0) + (message.completion_tokens or 0)
        meta = f"{message.provider} · {message.model} · {tokens} tokens"
    return {"id": message.id, "role": message.role, "content": message.content,
            "request_id": message.request_id, "meta": meta, "rating": message.rating or ""}


async def _models(runtime: Application) -> list[dict[str, str]]:
    """The picker's models: provider kind and model, each once, as the catalog lists them."""
    seen: dict[str, dict[str, str]] = {}
    for model in await model_catalog(runtime):
        if not model.serving:
            continue
        value = f"{model.kind}|{model.model}"
        seen.setdefault(value, {"value": value, "label": f"{model.model} ({model.provider})"})
    return list(seen.values())


__all__ = ["chat_context", "newest_conversation"]
