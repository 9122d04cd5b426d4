"""The offline ``echo`` provider: deterministic answers with no network and no key.

It answers the last user message back, prefixed with ``[echo]`` so no reader mistakes it for
a model's answer; every ``Completion`` and stream end it produces also says ``offline=True``.
It is what a fresh install answers with (``llm.default_provider = "echo"``), and what tests
and benchmarks use when the provider is not the point.

Tokens are whitespace-separated words, counted the same way for prompt and answer, so usage
is exact and reproducible: the prompt's tokens are the words of every message, the answer's
the words it streams. ``max_tokens`` cuts the answer short with ``finish_reason="length"``.

``embed`` gives each text a unit vector of ``EMBEDDING_DIMENSIONS`` (or the request's
``dimensions``), drawn from a hash of the text: equal texts get equal vectors, in any process,
and different texts all but orthogonal ones. They carry no meaning; they are labelled offline.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import AsyncIterator, Sequence
from itertools import filterfalse
from operator import attrgetter
from typing import ClassVar

from beamish.llm.providers.base import (
    VALIDATE_TIMEOUT_S,
    ChatMessage,
    ChatRequest,
    Completion,
    EmbeddingRequest,
    Embeddings,
    LLMProvider,
    ProviderChunk,
    Usage,
    discovered,
)
from beamish.llm.settings import ECHO_MODEL
from beamish.store.models import ProviderModel

LABEL = "[echo]"
"""The prefix of every echo answer."""

EMBEDDING_DIMENSIONS = 256
"""The length of an echo embedding when the request does not say ``dimensions``."""

_TOKEN = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    """The echo provider's token count of a text: its whitespace-separated words."""
    return len(text.split())


def echo_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> tuple[float, ...]:
    """The echo provider's vector of ``text``: a unit vector seeded from its SHA-256."""
    seed = hashlib.sha256(text.encode()).digest()
    stream = hashlib.shake_256(seed).digest(2 * dimensions)
    # Each pair of bytes is a coordinate in [-1, 1); the whole is scaled to length 1.
    raw = [int.from_bytes(stream[i:i + 2], "big") / 32768.0 - 1.0
           for i in range(0, 2 * dimensions, 2)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return tuple(x / norm for x in raw)


def echo_tokens(messages: Sequence[ChatMessage], max_tokens: int | None = None,
                ) -> tuple[list[str], str]:
    """The answer's tokens (each with its trailing space) and the finish reason."""
    said = ""
    for message in reversed(messages):  # the last user message: at the end, as a rule
        if message.role == "user":
            said = message.content
            break
    tokens = _TOKEN.findall(f"{LABEL} {said}".strip())
    if max_tokens is not None and len(tokens) > max_tokens:
        return tokens[:max_tokens], "length"
    return tokens, "stop"


class EchoProvider(LLMProvider):
    """Answers the last user message back, offline and deterministically."""

    offline: ClassVar[bool] = True

    def __init__(self, name: str = "echo") -> None:
        """Name the provider (``echo`` unless the registry calls it otherwise)."""
        super().__init__(name, "echo")

    async def complete(self, request: ChatRequest) -> Completion:
        """The whole echo answer, with its usage."""
        tokens, finish = echo_tokens(request.messages, request.parameters.max_tokens)
        text = "".join(tokens)
        return Completion(text=text, usage=_usage(_prompt_tokens(request), len(tokens)),
                          provider=self.kind, provider_name=self.name, model=request.model,
                          finish_reason=finish, offline=True)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """The echo answer one token per chunk, with the usage on the first and the last, as
        Anthropic reports it (the client counts the chunks between)."""
        tokens, finish = echo_tokens(request.messages, request.parameters.max_tokens)
        prompt = _prompt_tokens(request)  # once: the prompt may be a long history
        if tokens:
            yield ProviderChunk(tokens[0], _usage(prompt, 1))
        for token in tokens[1:]:
            yield ProviderChunk(token)
        yield ProviderChunk(usage=_usage(prompt, len(tokens)), finish_reason=finish)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """A deterministic unit vector per input (``echo_embedding``); tokens are words."""
        dimensions = request.dimensions or EMBEDDING_DIMENSIONS
        vectors = tuple(echo_embedding(text, dimensions) for text in request.inputs)
        tokens = sum(count_tokens(text) for text in request.inputs)
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=tokens),
                          provider=self.kind, provider_name=self.name, model=request.model,
                          offline=True)

    async def list_models(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> list[ProviderModel]:
        """The one echo model."""
        return [discovered(self.name, ECHO_MODEL)]


class _WordCounts:
    """Word counts of message texts seen lately: a conversation's history is sent, and
    counted, again with every request. Forgets everything past ``max_chars`` characters of
    text, so it holds a few MiB at most."""

    __slots__ = ("_chars", "_counts", "max_chars")

    def __init__(self, max_chars: int = 1 << 20) -> None:
        self._counts: dict[str, int] = {}
        self._chars = 0
        self.max_chars = max_chars

    def total(self, messages: Sequence[ChatMessage]) -> int:
        """The words of every message."""
        counts = self._counts
        total = 0
        try:  # a history is long, and only its newest texts are new
            for message in messages:  # twice as fast as sum() over maps of getters
                total += counts[message.content]
            return total
        except KeyError:
            texts = list(map(_CONTENT, messages))
        for text in filterfalse(counts.__contains__, texts):
            self._count(text)
        try:
            return sum(map(counts.__getitem__, texts))
        except KeyError:  # the memory was full and forgot some of them meanwhile
            return sum(map(count_tokens, texts))

    def _count(self, text: str) -> int:
        words = count_tokens(text)
        self._chars += len(text)
        if self._chars > self.max_chars:
            self._counts.clear()
            self._chars = len(text)
        self._counts[text] = words
        return words


_CONTENT = attrgetter("content")
_WORD_COUNTS = _WordCounts()


def _prompt_tokens(request: ChatRequest) -> int:
    return _WORD_COUNTS.total(request.messages)


@functools.lru_cache(maxsize=4096)
def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    # Usage is frozen, so answers of the same size share one: made and checked once, not
    # twice for every answer.
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
