"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Point the official SDK at it with a beamish user token as the API key::

    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:4000/v1", api_key=token)
    answer = await client.chat.completions.create(
        model="beamish", messages=[{"role": "user", "content": "hi"}])
    async for chunk in await client.chat.completions.create(
            model="beamish", messages=[...], stream=True,
            stream_options={"include_usage": True}):
        ...

**The caller's preferences fill what the request leaves out.** ``model`` omitted,
``"beamish"`` or ``"default"`` is the model the caller's configuration resolves to for the
task type; ``"provider:model"`` (``"openai:gpt-4o"``) names both; a bare model pairs with the
provider the caller's configuration resolves to. ``temperature``, ``top_p`` and
``max_tokens`` (or ``max_completion_tokens``) given in the request win; unset ones come
from the caller's preferences. The task type is ``chat`` unless the ``X-Beamish-Task-Type``
header names another.

**The session.** The call runs in the session the ``X-Beamish-Session`` header names
(opened for the caller if it is not open; 403 if it is another user's), else in the
caller's implicit session (``implicit_session_id``). The answer's ``X-Beamish-Session`` and
``X-Request-Id`` headers say which session and request id it was recorded under.

**Shapes** are OpenAI's: ``chat.completion``; ``chat.completion.chunk`` events (the first
carrying the role, one per token, one with ``finish_reason``, then — with
``stream_options.include_usage`` — one with empty ``choices`` and the ``usage``, every
earlier chunk carrying ``"usage": null``), then ``data: [DONE]``. A stream that breaks after
its first token ends with ``data: {"error": {...}}`` (the SDK raises ``APIError``); earlier
failures are HTTP errors with ``{"error": {"type", "message"}}`` bodies.

**Not supported** (400, rather than silently ignored): ``n`` > 1, tools and function calls,
``tool``/``function`` messages, and content parts other than text. Other OpenAI fields
(``user``, ``seed``, ``metadata``, ...) are accepted and ignored.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from beamish.application import Application
from beamish.auth import Principal
from beamish.llm.hierarchy import ConfigRequest
from beamish.llm.providers.base import ChatMessage, parse_chat_message
from beamish.llm.providers.stream import StreamDone, StreamError, StreamEvent, TokenDelta
from beamish.llm.settings import PROVIDERS
from beamish.server.api.calls import CallPlan, StreamingCall, complete
from beamish.server.api.catalog import model_catalog
from beamish.server.api.deps import AppDep, CurrentPrincipal
from beamish.server.api.errors import ERROR_RESPONSES, ErrorInfo, InvalidRequestError
from beamish.server.api.models import NAME_PATTERN, Out
from beamish.server.api.sessions import check_session_id, implicit_session_id
from beamish.server.api.sse import StreamInfo, sse_frame
from beamish.store.models import Provider, new_request_id

router = APIRouter(prefix="/v1", tags=["openai"], responses=ERROR_RESPONSES)

MODEL_ALIASES = frozenset({"beamish", "default"})
"""Model names that mean "the caller's resolved model"."""

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_FINISH_ALIASES = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_KINDS: dict[str, Provider] = {kind: kind for kind in PROVIDERS}


# --- requests ------------------------------------------------------------------------------


class _Lenient(BaseModel):
    # OpenAI clients send fields beamish has no use for; they are accepted and ignored.
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    """A part of a message's content; only ``text`` parts are supported."""

    type: str
    text: str | None = None


class MessageIn(_Lenient):
    """An OpenAI chat message."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[Any] | None = None


class StreamOptions(_Lenient):
    """``stream_options``: whether the stream ends with a usage chunk."""

    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    """The body of ``POST /v1/chat/completions``."""

    model: str | None = Field(default=None, max_length=255)
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None


def conversation(request: ChatCompletionRequest) -> tuple[ChatMessage, ...]:
    """The request's messages as beamish messages; 400 for what beamish cannot send."""
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("n > 1 is not supported: ask for one choice at a time")
    if request.tools or request.functions:
        raise InvalidRequestError("tools and function calling are not supported by beamish's "
                                  "chat completions; send plain messages")
    return tuple(_message(index, m) for index, m in enumerate(request.messages))


def _message(index: int, message: MessageIn) -> ChatMessage:
    if message.role in ("tool", "function") or message.tool_calls:
        raise InvalidRequestError(f"messages[{index}]: tool and function messages are not "
                                  "supported; send system, user and assistant messages")
    content = message.content
    if isinstance(content, list):
        others = sorted({part.type for part in content if part.type != "text"})
        if others:
            raise InvalidRequestError(f"messages[{index}]: content parts of type "
                                      f"{', '.join(others)} are not supported; send text")
        content = "\n".join(part.text or "" for part in content)
    role = "system" if message.role == "developer" else message.role
    return parse_chat_message({"role": role, "content": content or ""})


def config_request(request: ChatCompletionRequest) -> ConfigRequest | None:
    """The request layer of resolution: what the request sets, nothing else."""
    provider: Provider | None = None
    model = request.model
    if model is not None and model.strip().lower() in MODEL_ALIASES | {""}:
        model = None
    if model is not None:
        prefix, sep, rest = model.partition(":")
        if sep and rest and prefix in _KINDS:
            provider, model = _KINDS[prefix], rest
    parameters = {name: value for name, value in (
        ("temperature", request.temperature), ("top_p", request.top_p),
        ("max_tokens", request.max_completion_tokens or request.max_tokens))
        if value is not None}
    if provider is None and model is None and not parameters:
        return None
    return ConfigRequest.model_validate({"provider": provider, "model": model,
                                         "parameters": parameters})


def finish_reason(reason: str | None) -> str:
    """The provider's finish reason in OpenAI's words (``stop`` when unknown)."""
    if reason in FINISH_REASONS:
        return reason
    return _FINISH_ALIASES.get(reason or "", "stop")


# --- responses -----------------------------------------------------------------------------


class CompletionUsage(Out):
    """Tokens the answer took."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(Out):
    """The answer."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(Out):
    """The one choice of an answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(Out):
    """OpenAI's ``chat.completion``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: tuple[Choice, ...]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ModelCard(Out):
    """OpenAI's ``model``."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelCardList(Out):
    """OpenAI's model list."""

    object: Literal["list"] = "list"
    data: tuple[ModelCard, ...]


def _usage(prompt: int, completion: int) -> CompletionUsage:
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion,
                           total_tokens=prompt + completion)


# --- endpoints -----------------------------------------------------------------------------


SessionHeader = Annotated[str | None, Header(alias="X-Beamish-Session", pattern=NAME_PATTERN)]
TaskHeader = Annotated[str, Header(alias="X-Beamish-Task-Type", pattern=NAME_PATTERN)]


@router.post("/chat/completions", summary="Create a chat completion (OpenAI-compatible)",
             response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "chat.completion, or its chunks when streamed"}})
async def chat_completions(body: ChatCompletionRequest, caller: CurrentPrincipal, rt: AppDep,
                           response: Response, session: SessionHeader = None,
                           task_type: TaskHeader = "chat") -> Response | ChatCompletion:
    """An OpenAI chat completion in the caller's session, with the caller's preferences."""
    messages = conversation(body)
    options = config_request(body)
    session_id = await caller_session(rt, caller, session)
    plan = CallPlan(session_id=session_id, messages=messages, task_type=task_type,
                    options=options, caller=caller, endpoint="openai")
    request_id = new_request_id()
    headers = {"X-Request-Id": request_id, "X-Beamish-Session": session_id}
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        wire = OpenAIWire(include_usage=include_usage, created=int(time.time()))
        return StreamingCall(rt, plan, wire, request_id, headers)
    result = await complete(rt, plan, request_id)
    response.headers.update(headers)
    completion = result.completion
    return ChatCompletion(
        id=completion_id(request_id), created=int(time.time()), model=completion.model,
        choices=(Choice(message=AssistantMessage(content=completion.text),
                        finish_reason=finish_reason(completion.finish_reason)),),
        usage=_usage(completion.usage.prompt_tokens, completion.usage.completion_tokens))


async def caller_session(rt: Application, caller: Principal, named: str | None) -> str:
    """The session of a call: the one ``named`` (opened if needed), else the implicit one."""
    session_id = named or implicit_session_id(caller.user_id)
    check_session_id(session_id, caller.user_id)
    await rt.sessions.open(session_id, caller.user_id)
    return session_id


@router.get("/models", summary="List models (OpenAI-compatible)")
async def list_models(caller: CurrentPrincipal, rt: AppDep) -> ModelCardList:
    """``beamish`` (the caller's resolved model), then every catalog model as provider:model."""
    cards = [ModelCard(id="beamish", owned_by="beamish")]
    seen = {"beamish"}
    for entry in await model_catalog(rt):
        ref = f"{entry.kind}:{entry.model}"
        if ref not in seen:
            seen.add(ref)
            cards.append(ModelCard(id=ref, owned_by=entry.provider))
    return ModelCardList(data=tuple(cards))


def completion_id(request_id: str) -> str:
    """The OpenAI id of the answer recorded under ``request_id``."""
    return f"chatcmpl-{request_id}"


# --- the stream ----------------------------------------------------------------------------


class OpenAIWire:
    """OpenAI's ``chat.completion.chunk`` stream (sans-I/O).

    Args:
        include_usage: end with a usage chunk (``stream_options.include_usage``), and give
            every earlier chunk ``"usage": null`` as OpenAI does.
        created: the ``created`` stamp every chunk carries (Unix seconds).
    """

    def __init__(self, *, include_usage: bool, created: int) -> None:
        self.include_usage = include_usage
        self.created = created

    def chunk(self, info: StreamInfo, delta: dict[str, str], finish: str | None,
              ) -> dict[str, Any]:
        """One ``chat.completion.chunk`` with one choice."""
        chunk: dict[str, Any] = {
            "id": completion_id(info.request_id), "object": "chat.completion.chunk",
            "created": self.created, "model": info.model, "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def opening(self, info: StreamInfo) -> bytes:
        """The role chunk."""
        return sse_frame(self.chunk(info, {"role": "assistant", "content": ""}, None))

    def event(self, info: StreamInfo, event: StreamEvent) -> bytes:
        """A content chunk; or the finish chunk, the usage chunk and ``[DONE]``."""
        if isinstance(event, TokenDelta):
            return sse_frame(self.chunk(info, {"content": event.text}, None))
        if isinstance(event, StreamError):
            return sse_frame({"error": {"type": "provider_error", "message": str(event.error),
                                        "code": None}})
        return self._end(info, event)

    def _end(self, info: StreamInfo, done: StreamDone) -> bytes:
        frames = [sse_frame(self.chunk(info, {}, finish_reason(done.finish_reason)))]
        if self.include_usage:
            last = self.chunk(info, {}, None)
            last["choices"] = []
            last["usage"] = _usage(done.usage.prompt_tokens,
                                   done.usage.completion_tokens).model_dump()
            frames.append(sse_frame(last))
        frames.append(sse_frame("[DONE]"))
        return b"".join(frames)

    def failure(self, request_id: str, error: ErrorInfo) -> bytes:
        """An ``{"error": ...}`` frame: the SDK raises it as ``APIError``."""
        return sse_frame({"error": {"type": error.type, "message": error.message,
                                    "code": None}})


__all__ = [
    "MODEL_ALIASES", "ChatCompletion", "ChatCompletionRequest", "ModelCardList",
    "OpenAIWire", "caller_session", "completion_id", "config_request", "conversation",
    "finish_reason", "router",
]
