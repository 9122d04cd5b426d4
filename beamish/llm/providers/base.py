"""The provider interface and the messages, usage and completions that cross it.

A provider is one configured endpoint (``openai``, a local vLLM server, ``echo``) behind one
interface, ``LLMProvider``: ``complete`` answers at once, ``stream`` answers chunk by chunk,
``embed`` turns texts into vectors (``EmbeddingRequest`` in, ``Embeddings`` out; a provider
without an embeddings API refuses it with a ``BadRequestError`` saying so), ``list_models``
discovers the catalog and ``validate`` says whether the endpoint is reachable
with its key. Providers make exactly one try and translate every SDK failure into a
``beamish.llm.errors.ProviderCallError``; retries, timeouts and fallbacks are the client's
(``beamish.llm.providers.client.LLMClient``), which is also what callers use.

The models here are frozen pydantic models, so they validate on the way in and serialise on
the way out (``model_dump_json``) for the sessions and server layers; all but the ones
made on every call from values already checked — ``ChatMessage``, ``ChatRequest`` and
``Attempt``, slotted dataclasses, and ``ProviderChunk`` (one per streamed token), a named
tuple: validating each again cost more than the rest of its way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal, NamedTuple, Protocol, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from beamish.llm.errors import (
    BadRequestError,
    ProviderCallError,
    ProviderUnavailableError,
    UnauthorizedError,
)
from beamish.store.models import LLMParameters, Provider, ProviderModel

Role = Literal["system", "user", "assistant"]
"""Who said a message."""
_ROLES: frozenset[str] = frozenset(get_args(Role))

ValidationStatus = Literal["reachable", "unauthorized", "unreachable"]
"""What ``LLMProvider.validate`` found."""

VALIDATE_TIMEOUT_S = 10.0
"""How long ``validate`` and discovery wait for a provider by default."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallTarget(Protocol):
    """What to call: a provider kind, a model and its parameters.

    ``beamish.llm.ResolvedConfig`` fits; so does ``Target`` for a hand-made call.
    """

    @property
    def provider(self) -> Provider:
        """The provider kind (or registry name) to call."""
        ...

    @property
    def model(self) -> str:
        """The model to call."""
        ...

    @property
    def parameters(self) -> LLMParameters:
        """Sampling, timeout, retries and the fallback chain."""
        ...


class Target(_Model):
    """A ``CallTarget`` built by hand, e.g. ``Target(provider="echo", model="echo-1")``."""

    provider: Provider
    model: str = Field(min_length=1)
    parameters: LLMParameters = LLMParameters()


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation; checked when made (``parse_chat_message`` for dicts).

    A slotted dataclass rather than a pydantic model: a conversation's history is sent with
    every request, and each request reads every message of it, so each message is one small
    object (48 bytes, no ``__dict__``), made in under a microsecond. Pydantic models holding
    messages (``ChatRequest``) accept them as they are.

    Raises:
        ValueError: ``role`` is not ``system``, ``user`` or ``assistant``.
        TypeError: ``content`` is not a string.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"a message's role is one of {', '.join(sorted(_ROLES))}, "
                             f"not {self.role!r}")
        if not isinstance(self.content, str):
            raise TypeError(f"a message's content is a string, not {type(self.content).__name__}")


class Prompt(tuple[ChatMessage, ...]):
    """Messages known to be ``ChatMessage`` instances: a call takes them as they are.

    ``Prompt(messages)`` checks each one. ``Prompt.trusted`` skips that pass, for code that
    made every message itself — a conversation's history, kept as ``ChatMessage`` objects and
    sent again with each request, where checking the whole history every time cost more than
    the rest of reading it.

    Raises:
        TypeError: a message is not a ``ChatMessage`` (parse dicts with
            ``parse_chat_message``).
    """

    __slots__ = ()

    def __new__(cls, messages: Iterable[ChatMessage] = ()) -> Self:
        prompt = super().__new__(cls, messages)
        for message in prompt:
            if not isinstance(message, ChatMessage):
                raise TypeError(f"a prompt holds ChatMessage objects, not "
                                f"{type(message).__name__}")
        return prompt

    @classmethod
    def trusted(cls, messages: Iterable[ChatMessage]) -> Self:
        """``messages`` as a prompt, unchecked: the caller made each ``ChatMessage`` itself."""
        return tuple.__new__(cls, messages)


_CHAT_MESSAGE: TypeAdapter[ChatMessage] = TypeAdapter(ChatMessage)


def parse_chat_message(value: object) -> ChatMessage:
    """``value`` (a ``{"role", "content"}`` mapping) as a ``ChatMessage``.

    Raises:
        pydantic.ValidationError: it is not one (a bad role, a missing or extra field).
    """
    return _CHAT_MESSAGE.validate_python(value)


class Usage(_Model):
    """Tokens a call consumed, as the provider reported them (or counted, see ``ChatStream``)."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one model: which, and how it failed (``error`` is None for the one served)."""

    provider: str
    model: str
    error: str | None = None


class Completion(_Model):
    """A whole answer.

    Attributes:
        text: the answer.
        usage: the tokens it took.
        provider: the provider kind that answered (what ``UsageEvent.provider`` records).
        provider_name: the registry name of the provider that answered.
        model: the model that answered (a fallback's, if the chain was walked).
        finish_reason: why the answer ended (``stop``, ``length``, ...), as the provider says.
        offline: True when no LLM wrote it: the echo provider labels every answer so.
        attempts: every try that led to this answer, the last being the one served.
    """

    text: str
    usage: Usage
    provider: Provider
    provider_name: str
    model: str
    finish_reason: str | None = None
    offline: bool = False
    attempts: tuple[Attempt, ...] = ()

    @property
    def fell_back(self) -> bool:
        """Whether a model other than the first one tried served the answer."""
        first = self.attempts[0] if self.attempts else None
        return first is not None and (first.provider, first.model) != (
            self.provider_name, self.model)


_DEFAULT_PARAMETERS = LLMParameters()
_ONLY_MESSAGES = frozenset({ChatMessage})


def only_messages(messages: Iterable[object]) -> bool:
    """Whether every item is exactly a ``ChatMessage``: a long prompt checked in one C loop."""
    return _ONLY_MESSAGES.issuperset(map(type, messages))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """One try sent to one provider: the client resolves timeouts and models before it.

    Checked when made, like ``ChatMessage``, and kept as given: ``messages`` (a tuple; another
    sequence is copied into one) is the very tuple the caller passed, not a copy, and a
    ``Prompt`` is not checked again — a conversation's whole history goes with every request.

    Raises:
        ValueError: ``model`` is empty, there are no messages, or ``timeout_s`` is not above 0.
        TypeError: a message is not a ``ChatMessage``, or ``parameters`` is not
            ``LLMParameters``.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    parameters: LLMParameters = _DEFAULT_PARAMETERS
    timeout_s: float

    def __post_init__(self) -> None:
        messages = self.messages
        if type(messages) is not Prompt and type(messages) is not tuple:
            messages = tuple(messages)
            object.__setattr__(self, "messages", messages)
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"a request names a model, not {self.model!r}")
        if not messages:
            raise ValueError("a request needs at least one message")
        if type(messages) is not Prompt and not only_messages(messages):
            Prompt(messages)  # raises, naming what is not a message
        if not isinstance(self.parameters, LLMParameters):
            raise TypeError(f"a request's parameters are LLMParameters, not "
                            f"{type(self.parameters).__name__}")
        if not isinstance(self.timeout_s, int | float) or not self.timeout_s > 0:
            raise ValueError(f"a request's timeout_s is a number above 0, not "
                             f"{self.timeout_s!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingRequest:
    """One embeddings try sent to one provider: texts in, one vector per text out.

    Raises:
        ValueError: ``model`` is empty, there are no inputs, ``dimensions`` or ``timeout_s``
            is not above 0.
        TypeError: an input is not a string.
    """

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    timeout_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"a request names a model, not {self.model!r}")
        if not self.inputs:
            raise ValueError("an embeddings request needs at least one input")
        if not all(isinstance(text, str) for text in self.inputs):
            raise TypeError("an embeddings request's inputs are strings")
        if self.dimensions is not None and not self.dimensions > 0:
            raise ValueError(f"dimensions is above 0, not {self.dimensions!r}")
        if not isinstance(self.timeout_s, int | float) or not self.timeout_s > 0:
            raise ValueError(f"a request's timeout_s is a number above 0, not "
                             f"{self.timeout_s!r}")


class Embeddings(_Model):
    """The vectors of an embeddings call, one per input, in the inputs' order.

    Attributes:
        vectors: one vector per input.
        usage: the tokens the inputs took (``completion_tokens`` is always 0).
        provider: the provider kind that answered.
        provider_name: the registry name of the provider that answered.
        model: the model that answered (a fallback's, if the chain was walked).
        offline: True when no model made them: the echo provider's vectors.
        attempts: every try that led to them, the last being the one served.
    """

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    provider: Provider
    provider_name: str
    model: str
    offline: bool = False
    attempts: tuple[Attempt, ...] = ()


class ProviderChunk(NamedTuple):
    """A piece of a streamed answer, as a provider yields it.

    ``usage`` is the provider's cumulative figure when this chunk carries one; a chunk with a
    ``finish_reason`` says the answer is complete (a stream that ends without one broke).
    """

    # A named tuple, as immutable as a frozen dataclass and made three times faster: one per
    # token of every answer.

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


class Validation(_Model):
    """Whether a provider is reachable with its key.

    Attributes:
        provider: the provider's registry name.
        status: ``reachable``, ``unauthorized`` (it answered, and refused the key) or
            ``unreachable`` (no answer, or a server error).
        detail: what was found, in words; never contains the key.
        models: how many models it lists, when it is reachable and lists them.
    """

    provider: str
    status: ValidationStatus
    detail: str
    models: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the provider is reachable with its key."""
        return self.status == "reachable"


class LLMProvider(ABC):
    """One configured provider endpoint; see the module docstring.

    Subclasses implement ``complete``, ``stream``, ``list_models`` and ``aclose``, and
    ``embed`` if their API has embeddings (else it refuses, ``no_embeddings``); each makes
    one try and raises only ``ProviderCallError`` subclasses.

    Attributes:
        name: the registry name (``openai``, ``vllm-local``).
        kind: the provider kind (a vLLM server is ``openai_compatible``).
        offline: True for a provider that answers from this process, with no model and no
            I/O (``echo``): its answers are labelled offline, and the client arms no timeout
            for it, having nothing to wait for.
    """

    offline: ClassVar[bool] = False

    def __init__(self, name: str, kind: Provider) -> None:
        """Name the provider as the registry does, and say its kind."""
        self.name = name
        self.kind: Provider = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"

    @abstractmethod
    async def complete(self, request: ChatRequest) -> Completion:
        """The whole answer to ``request`` (``attempts`` left empty for the client)."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """The answer to ``request`` chunk by chunk; the last chunk has a finish reason."""

    @abstractmethod
    async def list_models(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> list[ProviderModel]:
        """The models the provider offers, for ``Store.replace_provider_models``."""

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """The vectors of ``request``'s inputs; by default, a refusal: no embeddings API."""
        raise no_embeddings(self.name, self.kind, request.model)

    async def aclose(self) -> None:  # noqa: B027 - a no-op by design for connectionless ones
        """Close the provider's connections."""

    async def validate(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> Validation:
        """Whether the provider answers with its key: lists its models and reads the outcome."""
        try:
            models = await self.list_models(timeout_s=timeout_s)
        except ProviderCallError as error:
            return validation_from_error(self.name, error)
        return validation_from_models(self.name, models)


def no_embeddings(name: str, kind: str, model: str) -> BadRequestError:
    """The refusal of a provider with no embeddings API (a 400, not retried)."""
    said = (f"{kind} has no embeddings endpoint; configure an embeddings model for the task "
            "type embeddings")
    return BadRequestError(f"{name}:{model}: {said}", provider=name, model=model, public=said)


def validation_from_models(name: str, models: list[ProviderModel]) -> Validation:
    """A provider that listed ``models``: reachable, and its key accepted."""
    return Validation(provider=name, status="reachable", models=len(models),
                      detail=f"{name} answered and lists {len(models)} models")


def validation_from_error(name: str, error: ProviderCallError) -> Validation:
    """Classify a failed model listing: refused key, no answer, or an answer all the same."""
    if isinstance(error, UnauthorizedError):
        return Validation(provider=name, status="unauthorized",
                          detail=f"{error}; check the provider's API key")
    if isinstance(error, ProviderUnavailableError):
        return Validation(provider=name, status="unreachable",
                          detail=f"{error}; check the base URL and that the server is up")
    # It answered (a 404 from a server without a model list, a 429): reachable, key accepted.
    return Validation(provider=name, status="reachable",
                      detail=f"{name} answered but could not list models: {error}")


def discovered(provider: str, model: str, context_window: int | None = None) -> ProviderModel:
    """A catalog entry for ``model`` of ``provider``, discovered now."""
    return ProviderModel(provider=provider, model=model, context_window=context_window,
                         discovered_at=datetime.now(UTC))
