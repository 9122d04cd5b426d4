"""The global configuration, summarised in words and checked as a whole (sans-I/O).

``ConfigFacts`` holds what the two admin endpoints read — the ``[llm]`` settings, the global
and tier configs of the store, the model catalog, the providers serving and those that are
not (with why) — and nothing reads anything else, so both are tested without a server.

**The layers of a task type and tier**, most specific first, as resolution walks them:
the tier's global config, the any-tier global config (``*``), the task type's settings
(``llm.task_types``), then the system default (``llm.default_provider`` /
``default_model``). Resolution skips a layer it cannot use and takes the next.

``summary`` says, in words, the system default, each task type with its layers and the
providers with whether each is serving. ``validate`` checks every layer of every task type
(the settings' task types and every one a global config names) against the catalog and the
providers serving, and answers per task type and tier: ``ok``, what serves it and from which
layer, and each problem met on the way — ``provider_not_serving`` (no usable provider of
that kind), ``unknown_model`` (the provider's catalog is known and does not list it),
``no_embeddings`` (Anthropic for the task type ``embeddings``), and ``no_usable_provider``
when no layer can serve it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from beamish.llm.settings import LLMSettings
from beamish.server.api.models import CatalogModel, Out
from beamish.store import ANY_TIER, GlobalConfig, Provider

ProblemKind = Literal["provider_not_serving", "unknown_model", "no_embeddings",
                      "no_usable_provider"]
Source = Literal["tier config", "global config", "settings", "system default"]


class Problem(Out):
    """One thing wrong with a layer, in words."""

    kind: ProblemKind
    source: Source | None
    message: str


class TierCheck(Out):
    """What a task type gets for one tier, and what is wrong on the way."""

    task_type: str
    tier: str
    ok: bool
    provider: Provider | None
    model: str | None
    source: Source | None
    problems: tuple[Problem, ...]


class ConfigValidation(Out):
    """Every task type and tier checked; ``ok`` when none has a problem."""

    ok: bool
    checks: tuple[TierCheck, ...]


class ConfigSummary(Out):
    """The global configuration in words."""

    text: str


@dataclass(frozen=True, slots=True)
class _Layer:
    source: Source
    provider: Provider
    model: str


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """Everything the summary and the check read.

    Args:
        settings: the ``[llm]`` settings.
        configs: the store's global and tier configs.
        catalog: the model catalog (``beamish.server.api.catalog.model_catalog``).
        serving: the kind of every usable provider, by registry name.
        unavailable: every provider configured but not usable, by name, with why.
        registered: the names of the registry's providers.
    """

    settings: LLMSettings
    configs: tuple[GlobalConfig, ...]
    catalog: tuple[CatalogModel, ...]
    serving: Mapping[str, Provider]
    unavailable: Mapping[str, str]
    registered: frozenset[str]

    def task_types(self) -> list[str]:
        """The settings' task types, then any other a global config names."""
        named = list(self.settings.task_types)
        return named + sorted({c.task_type for c in self.configs} - set(named))

    def layers(self, task_type: str, tier: str) -> list[_Layer]:
        """The layers of ``task_type`` for ``tier``, most specific first."""
        layers = [_Layer("tier config" if c.tier != ANY_TIER else "global config",
                         c.provider, c.model)
                  for wanted in (tier, ANY_TIER) for c in self.configs
                  if c.task_type == task_type and c.tier == wanted]
        own = self.settings.task_types.get(task_type)
        if own is not None and own.provider is not None and own.model is not None:
            layers.append(_Layer("settings", own.provider, own.model))
        layers.append(_Layer("system default", self.settings.default_provider,
                             self.settings.default_model))
        return layers

    def problem(self, task_type: str, layer: _Layer) -> Problem | None:
        """What keeps ``layer`` from serving ``task_type``, or None."""
        pair = f"{layer.provider}:{layer.model}"
        names = [n for n, kind in self.serving.items() if layer.provider in (n, kind)]
        if not names:
            why = [reason for name, reason in sorted(self.unavailable.items())
                   if name == layer.provider]
            said = f" ({'; '.join(why)})" if why else " (it needs a key or a registry row)"
            return Problem(kind="provider_not_serving", source=layer.source,
                           message=f"{pair}: no provider of kind {layer.provider!r} is "
                                   f"serving{said}")
        if task_type == "embeddings" and layer.provider == "anthropic":
            return Problem(kind="no_embeddings", source=layer.source,
                           message=f"{pair}: anthropic has no embeddings endpoint; configure "
                                   "an embeddings model for the task type embeddings")
        listing = [e for e in self.catalog if e.provider in names]
        closed = any(self.serving[n] == "echo" for n in names) or any(
            e.source == "registry" for e in listing)
        if closed and all(e.model != layer.model for e in listing):
            return Problem(kind="unknown_model", source=layer.source,
                           message=f"{pair}: {', '.join(names)} does not list "
                                   f"{layer.model!r} in the catalog")
        return None


def validate(facts: ConfigFacts) -> ConfigValidation:
    """Every task type and tier checked layer by layer (module docstring)."""
    checks = [_check(facts, task_type, tier)
              for task_type in facts.task_types() for tier in facts.settings.tiers]
    return ConfigValidation(ok=all(c.ok for c in checks), checks=tuple(checks))


def _check(facts: ConfigFacts, task_type: str, tier: str) -> TierCheck:
    problems: list[Problem] = []
    for layer in facts.layers(task_type, tier):
        problem = facts.problem(task_type, layer)
        if problem is None:
            return TierCheck(task_type=task_type, tier=tier, ok=not problems,
                             provider=layer.provider, model=layer.model, source=layer.source,
                             problems=tuple(problems))
        problems.append(problem)
    problems.append(Problem(kind="no_usable_provider", source=None,
                            message=f"no layer of {task_type!r} for tier {tier!r} can be "
                                    "served: fix a layer above, or enable a provider"))
    return TierCheck(task_type=task_type, tier=tier, ok=False, provider=None, model=None,
                     source=None, problems=tuple(problems))


def summary(facts: ConfigFacts) -> ConfigSummary:
    """The global configuration in words (module docstring)."""
    llm = facts.settings
    lines = [f"System default: {llm.default_provider}:{llm.default_model} (from settings: "
             "llm.default_provider, llm.default_model)", "", "Task types:"]
    for task_type in facts.task_types():
        own = llm.task_types.get(task_type)
        described = f" - {own.description}" if own is not None and own.description else ""
        lines.append(f"  {task_type}{described}")
        heading = len(lines)
        if own is not None and own.provider is not None:
            lines.append(f"    every tier: {own.provider}:{own.model} (from settings)")
        for config in sorted((c for c in facts.configs if c.task_type == task_type),
                             key=lambda c: (c.tier != ANY_TIER, c.tier)):
            where = ("every tier: " if config.tier == ANY_TIER else f"tier {config.tier}: ")
            kind = "global config" if config.tier == ANY_TIER else "tier config"
            lines.append(f"    {where}{config.provider}:{config.model} ({kind})")
        if len(lines) == heading:
            lines.append("    the system default (nothing configured)")
    lines += ["", "Providers:"]
    for name, kind in sorted(facts.serving.items()):
        origin = ("from the registry" if name in facts.registered
                  else "built in" if kind == "echo" else "from settings or the environment")
        lines.append(f"  {name} ({kind}): serving, {origin}")
    for name, reason in sorted(facts.unavailable.items()):
        lines.append(f"  {name}: not serving - {reason}")
    lines.append(f"\nTiers: {', '.join(llm.tiers)} (default {llm.default_tier})")
    return ConfigSummary(text="\n".join(lines))


__all__ = ["ConfigFacts", "ConfigSummary", "ConfigValidation", "Problem", "TierCheck",
           "summary", "validate"]
