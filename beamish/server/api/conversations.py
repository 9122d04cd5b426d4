"""The caller's chat conversations (``/api/conversations...``), as the chat stores them.

Each caller reaches only their own: conversation ids are per user, so another user's id is
simply not found (404). Every endpoint first waits until the chat's write-behind journal has
stored the messages handed to it so far (``ConversationJournal.flush``), so an answer the
channel just finished is listed, renamed, rated or deleted with the rest.

* ``GET /api/conversations`` — the newest ``limit`` (default 100), most recent first.
* ``GET /api/conversations/{conversation_id}`` — one, with its newest messages (answers
  carry provider, model, tokens, request id, finish reason and the caller's rating).
* ``PUT /api/conversations/{conversation_id}/title`` ``{"title"}`` — rename.
* ``DELETE /api/conversations/{conversation_id}`` — delete it and its messages (the usage
  ledger keeps its requests); 204.
* ``PUT /api/conversations/{conversation_id}/messages/{message_id}/rating``
  ``{"rating": "up" | "down" | null}`` — rate an answer (null clears the rating).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from beamish.chat import ConversationHistory
from beamish.server.api.deps import AppDep, CurrentPrincipal
from beamish.server.api.errors import ERROR_RESPONSES
from beamish.server.api.models import Body, Out
from beamish.store import NotFoundError
from beamish.store.conversation_models import (
    MAX_TITLE,
    ConversationMessage,
    ConversationRecord,
)
from beamish.store.job_models import Rating
from beamish.store.text import NO_NUL

CONVERSATIONS_STATE: Final = "beamish_conversations"
"""The ``app.state`` attribute holding the app's ``ConversationHistory`` (the chat's cache
and journal; ``beamish.server.mount`` sets it)."""

MAX_LISTED: Final = 1000
"""The most conversations, or messages of one, an answer holds."""
_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"

router = APIRouter(prefix="/api/conversations", tags=["conversations"],
                   responses=ERROR_RESPONSES)

ConversationId = Annotated[str, Path(pattern=_ID_PATTERN, description="a conversation's id")]
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a message's id")]


class ConversationList(Out):
    """The caller's conversations, most recently updated first."""

    conversations: list[ConversationRecord]


class ConversationView(Out):
    """One conversation and its newest messages, oldest first."""

    conversation: ConversationRecord
    messages: list[ConversationMessage]


class TitleIn(Body):
    """A conversation's new title."""

    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE, pattern=r"\S"), NO_NUL]


class RatingIn(Body):
    """An answer's rating; null clears it."""

    rating: Rating | None


async def _flushed(request: Request) -> ConversationHistory | None:
    """The app's conversation history, once its journal has stored what it was given."""
    history: ConversationHistory | None = getattr(request.app.state, CONVERSATIONS_STATE,
                                                  None)
    if history is not None and history.journal is not None:
        await history.journal.flush()
    return history


@router.get("", summary="List my conversations")
async def list_conversations(
        request: Request, caller: CurrentPrincipal, rt: AppDep,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100) -> ConversationList:
    """The caller's newest conversations, each with its title and size."""
    await _flushed(request)
    return ConversationList(conversations=await rt.store.list_conversations(
        caller.user_id, limit=limit))


@router.get("/{conversation_id}", summary="Show one of my conversations with its messages")
async def get_conversation(
        request: Request, conversation_id: ConversationId, caller: CurrentPrincipal,
        rt: AppDep,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = MAX_LISTED) -> ConversationView:
    """One of the caller's conversations and its newest ``limit`` messages."""
    await _flushed(request)
    store = rt.store
    found = await store.get_conversation(caller.user_id, conversation_id)
    if found is None:
        raise NotFoundError(f"you have no conversation {conversation_id!r}; list yours with "
                            "GET /api/conversations")
    messages = await store.list_conversation_messages(caller.user_id, conversation_id,
                                                      limit=limit)
    return ConversationView(conversation=found, messages=messages)


@router.put("/{conversation_id}/title", summary="Rename one of my conversations")
async def rename_conversation(request: Request, conversation_id: ConversationId,
                              body: TitleIn, caller: CurrentPrincipal,
                              rt: AppDep) -> ConversationRecord:
    """Give the conversation a title (shown in the chat's list instead of its first
    question)."""
    await _flushed(request)
    return await rt.store.rename_conversation(caller.user_id, conversation_id,
                                              body.title.strip())


@router.delete("/{conversation_id}", summary="Delete one of my conversations",
               status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_conversation(request: Request, conversation_id: ConversationId,
                              caller: CurrentPrincipal, rt: AppDep) -> Response:
    """Delete the conversation and its messages; the usage ledger keeps its requests."""
    history = await _flushed(request)
    await rt.store.delete_conversation(caller.user_id, conversation_id)
    if history is not None:
        history.discard(conversation_id, caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{conversation_id}/messages/{message_id}/rating",
            summary="Rate an answer in one of my conversations")
async def rate_answer(request: Request, conversation_id: ConversationId,
                      message_id: MessageId, body: RatingIn, caller: CurrentPrincipal,
                      rt: AppDep) -> ConversationMessage:
    """Thumbs up or down on one answer (changeable; null clears it)."""
    await _flushed(request)
    return await rt.store.rate_conversation_message(caller.user_id, conversation_id,
                                                    message_id, body.rating)


__all__ = ["CONVERSATIONS_STATE", "router"]
