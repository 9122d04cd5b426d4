"""Sessions over HTTP: ``/api/sessions``, and session-scoped completions.

* ``POST /api/sessions`` — open a session for the caller (an admin may name ``user_id``);
  ``session_id`` resumes that one if it is open, else opens it.
* ``GET /api/sessions`` — the caller's open sessions.
* ``GET /api/sessions/{id}`` — its context (tier, cached task types) and usage.
* ``DELETE /api/sessions/{id}`` — close it (its usage stays in the ledger).

Session ids are per user: ada's ``s1`` and bob's ``s1`` are two sessions, and a user naming
an id reaches their own session of that id only (404 when they have none open), never
another user's. An admin reaches another user's session with ``?user_id=``; without it, the
one user's who has that id open (409 ``conflict`` if several have).
* ``POST /api/sessions/{id}/completions`` — one call in the session: ``messages`` (or
  ``content``, one user message), ``task_type``, and any of ``provider``, ``model`` and the
  sampling parameters to override the user's preferences for this call. The answer carries
  the configuration used, with each field's source. With ``"stream": true`` it is a stream
  of server-sent events::

      event: token   data: {"request_id": "...", "delta": "Hel"}            (repeated)
      event: done    data: {"request_id": "...", "session_id": "...", "usage": {...},
                            "provider": "...", "model": "...", "finish_reason": "stop",
                            "offline": false, "config": {... with "sources" ...}}
      event: error   data: {"request_id": "...", "error": {"type": "...", "message": "..."}}

  ``done`` or ``error`` ends the stream. Errors found before the first token are ordinary
  HTTP errors. A client that disconnects stops the call; its usage so far is recorded
  as ``cancelled``.

Session ids beginning with ``openai.`` are reserved for the implicit sessions of the
OpenAI-compatible API (``implicit_session_id``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import Field, model_validator

from beamish.auth import Principal
from beamish.llm.hierarchy import ConfigRequest
from beamish.llm.providers.base import ChatMessage
from beamish.llm.providers.stream import StreamDone, StreamEvent, TokenDelta
from beamish.server.api.calls import CallPlan, StreamingCall, complete
from beamish.server.api.deps import AppDep, CurrentPrincipal, check_user
from beamish.server.api.errors import (
    ERROR_RESPONSES,
    ErrorInfo,
    ForbiddenError,
    InvalidRequestError,
)
from beamish.server.api.models import NAME_PATTERN, Body, ConfigView, Out, SessionId, UsageView
from beamish.server.api.sse import StreamInfo, sse_frame
from beamish.sessions import SessionInfo
from beamish.store import Provider
from beamish.store.models import Name, new_request_id

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=ERROR_RESPONSES)

IMPLICIT_PREFIX = "openai."
"""Session ids with this prefix are the OpenAI-compatible API's implicit sessions."""

MAX_MESSAGES = 1000
MAX_CONTENT = 1_000_000


class SessionIn(Body):
    """A session to open (or resume)."""

    session_id: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None
    user_id: Annotated[str | None, Field(min_length=1, max_length=256,
                                         description="admins only: open it for this user")] \
        = None


UserQuery = Annotated[str | None, Query(
    min_length=1, max_length=256,
    description="whose session (admins only, for another user's; default: the caller's)")]


class SessionList(Out):
    """The caller's open sessions."""

    sessions: tuple[str, ...]


class MessageIn(Body):
    """One message of the conversation."""

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_CONTENT)]


class CompletionIn(Body):
    """A call in the session. Fields left out come from the user's preferences."""

    messages: Annotated[list[MessageIn] | None, Field(min_length=1, max_length=MAX_MESSAGES)] \
        = None
    content: Annotated[str | None, Field(min_length=1, max_length=MAX_CONTENT,
                                         description="one user message")] = None
    task_type: Annotated[str, Field(pattern=NAME_PATTERN)] = "chat"
    provider: Provider | None = None
    model: Name | None = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    timeout_s: Annotated[float | None, Field(ge=1, le=300)] = None
    max_retries: Annotated[int | None, Field(ge=0, le=10)] = None
    stream: bool = False

    @model_validator(mode="after")
    def _one_conversation(self) -> CompletionIn:
        if (self.messages is None) == (self.content is None):
            raise ValueError("give either messages (a list of {role, content}) or content "
                             "(one user message), not both and not neither")
        return self

    def conversation(self) -> tuple[ChatMessage, ...]:
        """The messages to send."""
        if self.messages is None:
            return (ChatMessage(role="user", content=self.content or ""),)
        return tuple(ChatMessage(role=m.role, content=m.content) for m in self.messages)

    def options(self) -> ConfigRequest | None:
        """The request layer of resolution, if the call sets anything."""
        parameters = {name: value for name in ("temperature", "max_tokens", "top_p",
                                               "timeout_s", "max_retries")
                      if (value := getattr(self, name)) is not None}
        if not parameters and self.provider is None and self.model is None:
            return None
        return ConfigRequest.model_validate({"provider": self.provider, "model": self.model,
                                             "parameters": parameters})


class CompletionOut(Out):
    """A whole answer, with the configuration that produced it."""

    request_id: str
    session_id: str
    text: str
    finish_reason: str | None
    provider: str
    model: str
    offline: bool
    usage: UsageView
    config: ConfigView


def implicit_session_id(user_id: str) -> str:
    """The id of ``user_id``'s implicit session of the OpenAI-compatible API.

    Derived from a hash so that any user id (up to 256 characters of anything printable)
    makes a valid session id, and different users never share one.
    """
    return IMPLICIT_PREFIX + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def check_session_id(session_id: str, owner: str) -> None:
    """Refuse a reserved (implicit) session id unless it is ``owner``'s own."""
    if session_id.startswith(IMPLICIT_PREFIX) and session_id != implicit_session_id(owner):
        raise InvalidRequestError(
            f"session ids starting with {IMPLICIT_PREFIX!r} are reserved for the implicit "
            "sessions of /v1/chat/completions; pick another id")


@router.post("", summary="Open a session", status_code=status.HTTP_201_CREATED)
async def open_session(body: SessionIn, caller: CurrentPrincipal, rt: AppDep) -> SessionInfo:
    """Open a session for the caller (or, for an admin, for ``user_id``)."""
    owner = body.user_id or caller.user_id
    if owner != caller.user_id and not caller.is_admin:
        raise ForbiddenError(f"user {caller.user_id!r} may not open sessions for "
                             f"{owner!r}; only an admin token may name another user")
    if body.session_id is not None:
        check_session_id(body.session_id, owner)
    return await rt.sessions.open(body.session_id, owner)


@router.get("", summary="List my open sessions")
async def my_sessions(caller: CurrentPrincipal, rt: AppDep) -> SessionList:
    """The caller's open sessions."""
    return SessionList(sessions=tuple(sid for sid, _ in
                                      rt.sessions.open_sessions(caller.user_id)))


@router.get("/{session_id}", summary="Show a session")
async def get_session(session_id: SessionId, caller: CurrentPrincipal, rt: AppDep,
                      user_id: UserQuery = None) -> SessionInfo:
    """The session's context and usage."""
    return await rt.sessions.get(session_id, user_id=_owner_check(caller, user_id))


@router.delete("/{session_id}", summary="Close a session",
               status_code=status.HTTP_204_NO_CONTENT)
async def close_session(session_id: SessionId, caller: CurrentPrincipal, rt: AppDep,
                        user_id: UserQuery = None) -> Response:
    """Close the session; its usage stays in the ledger."""
    await rt.sessions.close(session_id, user_id=_owner_check(caller, user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{session_id}/completions", summary="Complete in a session",
             response_model=CompletionOut,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "the answer, or its events when streamed"}})
async def session_completion(session_id: SessionId, body: CompletionIn, caller: CurrentPrincipal,
                             rt: AppDep, response: Response,
                             user_id: UserQuery = None) -> Response | CompletionOut:
    """One call in the session, whole or streamed (``"stream": true``)."""
    owner = _owner_check(caller, user_id)
    # Before anything runs: a clear 404 when the session is not open (for this user).
    owner = rt.sessions.owner(session_id, user_id=owner)
    plan = CallPlan(session_id=session_id, messages=body.conversation(),
                    task_type=body.task_type, options=body.options(), caller=caller,
                    endpoint="sessions", user_id=owner)
    request_id = new_request_id()
    if body.stream:
        return StreamingCall(rt, plan, SessionWire(), request_id,
                             {"X-Request-Id": request_id})
    response.headers["X-Request-Id"] = request_id
    result = await complete(rt, plan, request_id)
    completion = result.completion
    return CompletionOut(
        request_id=result.request_id, session_id=session_id, text=completion.text,
        finish_reason=completion.finish_reason, provider=completion.provider,
        model=completion.model, offline=completion.offline,
        usage=_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens),
        config=ConfigView.of(result.config))


def _owner_check(caller: Principal, user_id: str | None) -> str | None:
    """Whose session the caller addresses: ``user_id`` (403 unless it may act for them), the
    caller's own, or for an admin naming nobody, the one user's who has it open (None)."""
    if user_id is not None:
        check_user(caller, user_id)
        return user_id
    return None if caller.is_admin else caller.user_id


def _usage(prompt: int, completion: int) -> UsageView:
    return UsageView(prompt_tokens=prompt, completion_tokens=completion,
                     total_tokens=prompt + completion)


class SessionWire:
    """beamish's own event stream: ``token``, then ``done`` or ``error`` (sans-I/O)."""

    def opening(self, info: StreamInfo) -> bytes:
        """Nothing: the first token comes first."""
        return b""

    def event(self, info: StreamInfo, event: StreamEvent) -> bytes:
        """``token`` for a delta, ``done`` for the end, ``error`` for a broken stream."""
        if isinstance(event, TokenDelta):
            return sse_frame({"request_id": info.request_id, "delta": event.text}, "token")
        usage = _usage(event.usage.prompt_tokens, event.usage.completion_tokens).model_dump()
        if isinstance(event, StreamDone):
            return sse_frame({
                "request_id": info.request_id, "session_id": info.session_id,
                "usage": usage, "provider": event.provider, "model": event.model,
                "finish_reason": event.finish_reason, "offline": event.offline,
                "config": ConfigView.of(info.config).model_dump(mode="json")}, "done")
        return sse_frame({"request_id": info.request_id, "usage": usage,
                          "error": {"type": "provider_error", "code": event.error.code,
                                    "message": event.error.public_message}}, "error")

    def failure(self, request_id: str, error: ErrorInfo) -> bytes:
        """``error`` with the typed error."""
        typed = {"type": error.type, "message": error.message}
        if error.code is not None:
            typed["code"] = error.code
        return sse_frame({"request_id": request_id, "error": typed}, "error")


__all__ = ["IMPLICIT_PREFIX", "SessionWire", "check_session_id", "implicit_session_id",
           "router"]
