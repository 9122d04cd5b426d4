"""The fallback chain of a call, and which provider serves each link; no I/O.

A call tries its target's model first, then each of ``parameters.fallback_models`` in order.
An entry is ``"provider:model"`` — the provider by registry name or by kind — or a bare
``"model"`` of the target's own provider. Model names may hold colons themselves (Ollama's
``llama3:8b``), so an entry is split only when the part before the first colon names a known
provider; ``"ollama:llama3:8b"`` is ``ollama`` with ``llama3:8b``, and a bare ``"llama3:8b"``
stays one model. Repeated links are tried once.

A link's provider is the one registered under that name; failing that, the first by name of
that kind. So a target of kind ``openai`` reaches the registry row ``openai-eu`` when no row
is named ``openai``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple, get_args

from beamish.llm.providers.base import CallTarget, LLMProvider
from beamish.store.models import Provider

KINDS: frozenset[str] = frozenset(get_args(Provider))
"""Every provider kind."""


class Link(NamedTuple):
    """One model of a fallback chain, and the provider (registry name or kind) to ask."""

    # A named tuple, as immutable as a frozen dataclass and made faster: one per call.
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model_ref(ref: str, default_provider: str, known: Collection[str] = KINDS) -> Link:
    """The link ``ref`` names: ``"provider:model"`` if the prefix is in ``known``, else bare."""
    prefix, colon, rest = ref.partition(":")
    if colon and rest and prefix in known:
        return Link(prefix, rest)
    return Link(default_provider, ref)


def fallback_chain(target: CallTarget, known: Collection[str] = KINDS) -> tuple[Link, ...]:
    """The target's model, then its fallbacks, each once, in order."""
    first = Link(target.provider, target.model)
    fallbacks = target.parameters.fallback_models
    if not fallbacks:
        return (first,)
    links = [first, *(parse_model_ref(ref, target.provider, known) for ref in fallbacks)]
    return tuple(dict.fromkeys(links))


def pick_provider(provider: str, providers: Mapping[str, LLMProvider]) -> LLMProvider | None:
    """The provider registered as ``provider``, else the first by name of that kind."""
    found = providers.get(provider)
    if found is not None:
        return found
    of_kind = sorted((p for p in providers.values() if p.kind == provider), key=lambda p: p.name)
    return of_kind[0] if of_kind else None
