"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models`` (``POST
/v1/embeddings`` is ``beamish.server.api.embeddings``).

Point the official SDK at it with a beamish user token as the API key::

    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:4000/v1", api_key=token)
    answer = await client.chat.completions.create(
        model="beamish", messages=[{"role": "user", "content": "hi"}])
    async for chunk in await client.chat.completions.create(
            model="beamish", messages=[...], stream=True,
            stream_options={"include_usage": True}):
        ...

**Models.** ``model`` omitted, empty, ``"beamish"`` or ``"default"`` is the model the
caller's configuration resolves to for the task type. Otherwise it names a model a usable
provider serves, as ``GET /v1/models`` lists them (``ModelNames``):

* ``"kind:model"`` (``"openai:gpt-4o"``, ``"echo:echo-1"``) — a provider kind and a model;
* ``"name/model"`` (``"vllm-local/llama3"``) — a provider's registry name and a model
  (listed for providers whose name is not their kind);
* ``"model"`` — a listed model, alias of the first provider listing it (as LiteLLM allows).

With a provider named, a model its catalog does not list is accepted only while that
catalog is open (a provider configured in settings, or registered but not yet discovered):
the provider then answers for it. Anything else — an unknown model, a provider that is not
configured or not usable, a provider's name alone — is a 404 ``model_not_found`` in
OpenAI's error shape (the SDK raises ``NotFoundError``), never another model's answer.

**The caller's preferences fill what the request leaves out.** ``temperature``, ``top_p`` and
``max_tokens`` (or ``max_completion_tokens``) given in the request win; unset ones come
from the caller's preferences. The task type is ``chat`` unless the ``X-Beamish-Task-Type``
header names another.

**The session.** The call runs in the session the ``X-Beamish-Session`` header names
(the caller's session of that id, opened if it is not open: session ids are per user, so
another user's session of the same id is a different one), else in the caller's implicit
session (``implicit_session_id``). The answer's ``X-Beamish-Session`` and
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
from beamish.server.api.errors import (
    ERROR_RESPONSES,
    ErrorInfo,
    InvalidRequestError,
    ModelNotFoundError,
)
from beamish.server.api.models import NAME_PATTERN, CatalogModel, Out
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


Pair = tuple[Provider | None, str | None]
"""A request's provider kind and model, either left to the caller's configuration (None)."""


def is_alias(model: str | None) -> bool:
    """Whether ``model`` means "the caller's resolved model" (None, empty, an alias)."""
    return model is None or model.strip().lower() in MODEL_ALIASES | {""}


def config_request(request: ChatCompletionRequest, pair: Pair | None = None,
                   ) -> ConfigRequest | None:
    """The request layer of resolution: what the request sets, nothing else.

    ``pair`` is the provider and model ``ModelNames.pick`` found for ``request.model``;
    without it, ``request.model`` is read as written (``kind:model`` names both).
    """
    provider, model = pair if pair is not None else _written_pair(request.model)
    parameters = {name: value for name, value in (
        ("temperature", request.temperature), ("top_p", request.top_p),
        ("max_tokens", request.max_completion_tokens or request.max_tokens))
        if value is not None}
    if provider is None and model is None and not parameters:
        return None
    return ConfigRequest.model_validate({"provider": provider, "model": model,
                                         "parameters": parameters})


def _written_pair(model: str | None) -> Pair:
    if model is None or is_alias(model):
        return None, None
    prefix, sep, rest = model.partition(":")
    if sep and rest and prefix in _KINDS:
        return _KINDS[prefix], rest
    return None, model


@dataclass(frozen=True, slots=True)
class ModelNames:
    """The model names ``/v1`` accepts, from the catalog and the serving providers (sans-I/O).

    Args:
        catalog: the model catalog (``beamish.server.api.catalog.model_catalog``).
        serving: the kind of every usable provider, by registry name.
    """

    catalog: tuple[CatalogModel, ...]
    serving: Mapping[str, Provider]

    @classmethod
    def of(cls, catalog: Iterable[CatalogModel], serving: Mapping[str, Provider],
           ) -> ModelNames:
        """The names of ``catalog``'s models that ``serving`` providers serve."""
        return cls(tuple(e for e in catalog if e.provider in serving), dict(serving))

    def listed(self) -> list[tuple[str, str]]:
        """Every name with its owner (provider name), as ``GET /v1/models`` lists them."""
        names: dict[str, str] = {}
        for entry in self.catalog:
            names.setdefault(f"{entry.kind}:{entry.model}", entry.provider)
            if entry.provider != entry.kind:
                names.setdefault(f"{entry.provider}/{entry.model}", entry.provider)
        return list(names.items())

    def pick(self, model: str | None) -> Pair:
        """The provider kind and model ``model`` names, (None, None) for an alias.

        Raises:
            ModelNotFoundError: no usable provider serves a model of that name.
        """
        if model is None or is_alias(model):
            return None, None
        name, sep, rest = model.partition("/")
        if sep and rest and name in self.serving:
            return self._of_provider(model, [name], rest)
        prefix, sep, rest = model.partition(":")
        if sep and rest and prefix in _KINDS:
            named = [n for n, kind in self.serving.items() if kind == prefix]
            return self._of_provider(model, named, rest, kind=_KINDS[prefix])
        for entry in self.catalog:
            if entry.model == model:
                return entry.kind, entry.model
        raise self._not_found(model, "no usable provider lists it")

    def _of_provider(self, asked: str, names: list[str], model: str, *,
                     kind: Provider | None = None) -> Pair:
        if not names:
            raise self._not_found(asked, f"no usable provider is of kind {kind!r} (it needs "
                                         "a key or a registry row)")
        listing = [e for e in self.catalog if e.provider in names]
        if any(e.model == model for e in listing) or self._open(names, listing):
            return self.serving[names[0]], model
        raise self._not_found(asked, f"{', '.join(names)} does not list {model!r}")

    def _open(self, names: list[str], listing: list[CatalogModel]) -> bool:
        # A provider's catalog is open until discovery fills it: a registered row with no
        # models, or one configured in settings (which lists only its default model).
        if any(self.serving[n] == "echo" for n in names):
            return False
        return not any(e.source == "registry" for e in listing)

    def _not_found(self, model: str, why: str) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"the model {model!r} does not exist here: {why}. GET /v1/models lists the "
            "models you can name (kind:model, name/model or a listed model), and 'beamish' "
            "is your configured model")


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
    # The catalog is read only for a named model: the aliases need no check.
    pair = None if is_alias(body.model) else (await model_names(rt)).pick(body.model)
    options = config_request(body, pair)
    session_id = await caller_session(rt, caller, session)
    plan = CallPlan(session_id=session_id, messages=messages, task_type=task_type,
                    options=options, caller=caller, endpoint="openai",
                    user_id=caller.user_id)  # the caller's own session, admin or not
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
    await rt.sessions.ensure_open(session_id, caller.user_id)
    return session_id


async def model_names(rt: Application) -> ModelNames:
    """The names ``/v1`` accepts now: the catalog's models of the providers serving."""
    serving = {name: provider.kind for name, provider in rt.llm.providers.items()}
    return ModelNames.of(await model_catalog(rt), serving)


@router.get("/models", summary="List models (OpenAI-compatible)")
async def list_models(caller: CurrentPrincipal, rt: AppDep) -> ModelCardList:
    """``beamish`` (the caller's resolved model), then every model name ``/v1`` accepts."""
    cards = [ModelCard(id="beamish", owned_by="beamish")]
    cards += [ModelCard(id=name, owned_by=owner)
              for name, owner in (await model_names(rt)).listed()]
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
            return sse_frame({"error": {"type": "provider_error",
                                        "message": event.error.public_message,
                                        "param": None, "code": event.error.code}})
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
        return sse_frame(error.openai_body())


__all__ = [
    "MODEL_ALIASES", "ChatCompletion", "ChatCompletionRequest", "ModelCardList", "ModelNames",
    "OpenAIWire", "Pair", "caller_session", "completion_id", "config_request", "conversation",
    "finish_reason", "is_alias", "model_names", "router",
]
