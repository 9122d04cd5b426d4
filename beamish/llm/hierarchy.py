"""Config resolution: which provider, model and parameters a call gets, and why.

Sans-I/O: ``resolve_config`` takes every layer as plain data (``ResolutionInputs``) and
returns a ``ResolvedConfig`` recording, per field, the ``Layer`` that supplied it, plus a
warning for everything it skipped. ``beamish.llm.resolver.ConfigResolver`` loads the layers
from the store and caches the result; this module does no I/O and needs no event loop::

    settings = LLMSettings()
    config = resolve_config(ResolutionInputs(
        task_type="chat", settings=settings,
        availability=Availability.of([], settings, configured=frozenset()),
        request=ConfigRequest(parameters=LLMParameters(temperature=0.1))))
    (config.provider, config.model)        # ("echo", "echo-1")
    config.sources["model"]                # Layer.SYSTEM_DEFAULT
    config.sources["temperature"]          # Layer.REQUEST

The layers, highest first::

    request               explicit values of this call (ConfigRequest)
    user_task_override    the user's override for the task type
    user_default          the user's default config
    user_provider_config  the user's config for the requested (or resolved) provider
    tier_config           the global config for (task type, the user's tier)
    global_config         the global config for (task type, any tier)
    system_default        settings: the task type's defaults, then the system defaults
    first_available       the first usable provider with a known model

**Provider and model** come as a pair from the highest layer whose pair is usable. A request
may name only a provider: its model is then the user's config for that provider, else the
highest layer naming that provider, else the provider's default model in settings, else the
first model of its catalog. A request may name only a model: it pairs with the provider the
layers below resolve to. ``user_provider_config`` names a pair only in that first case.

**Parameters** are resolved field by field: each of temperature, max_tokens, top_p,
timeout_s, max_retries and fallback_models comes from the highest layer that sets it. The
user's configs (default and per provider) configure *their* provider: their parameters apply
only when that provider is the one resolved. The other layers describe the task and apply
whatever provider is picked, even when their own pair was skipped. A field no layer sets
is unset (the provider's own default) and has no entry in ``sources``.

**Validity.** A pair is skipped when its provider is not usable (``Availability``) or its
model is not in the provider's catalog (only checked when that catalog is non-empty). A
parameter is skipped when it is outside the resolved model's limits: ``max_tokens`` above
the catalog's context window, ``temperature`` above 1 on Anthropic. A profile tier not in
``LLMSettings.tiers`` is resolved as the default tier. Every skip adds a warning
``"<layer>: skipped <what>: <why>"``.

**Template.** The global configs of the task may name the prompt template it uses
(``GlobalConfig.template``, with ``template_label``): the tier config's wins over the
any-tier one, independently of which pair was picked (a template describes the task, not
the provider); ``sources["template"]`` says which layer named it. No layer naming one leaves
``template`` None and no ``template`` source.

**Fallback models** are ``"provider:model"`` or a bare ``"model"`` meaning the resolved
provider (so ``"llama3.1:8b"`` is a bare Ollama model: only a known provider kind before
the first colon makes a prefix). The resolved list is always qualified, without the primary
model or duplicates; entries with an unusable provider or unknown model are dropped with a
warning, and a layer whose entries are all dropped falls through to the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from beamish.llm.errors import NoUsableProviderError
from beamish.llm.settings import PROVIDERS, LLMSettings
from beamish.llm.urls import base_url_problem
from beamish.store.models import (
    ANY_TIER,
    GlobalConfig,
    LLMParameters,
    Name,
    Provider,
    ProviderModel,
    ProviderRecord,
    TaskOverride,
    UserLLMConfig,
)


class Layer(StrEnum):
    """Where a resolved value came from, highest precedence first."""

    REQUEST = "request"
    USER_TASK_OVERRIDE = "user_task_override"
    USER_DEFAULT = "user_default"
    USER_PROVIDER_CONFIG = "user_provider_config"
    TIER_CONFIG = "tier_config"
    GLOBAL_CONFIG = "global_config"
    SYSTEM_DEFAULT = "system_default"
    FIRST_AVAILABLE = "first_available"


PARAMETER_FIELDS = ("temperature", "max_tokens", "top_p", "timeout_s", "max_retries",
                    "fallback_models")
"""The ``LLMParameters`` fields, in the order ``sources`` lists them."""

ANTHROPIC_MAX_TEMPERATURE = 1.0

Catalog = Mapping[Provider, Mapping[str, int | None]]
"""Per provider kind, its known models and their context windows (None when unknown)."""

_KINDS: dict[str, Provider] = {kind: kind for kind in PROVIDERS}


def parse_model_ref(ref: str, provider: Provider) -> tuple[Provider, str]:
    """Split a fallback entry into (provider, model); a bare model means ``provider``.

    Example: ``parse_model_ref("openai:gpt-4o", "echo") == ("openai", "gpt-4o")`` and
    ``parse_model_ref("llama3.1:8b", "ollama") == ("ollama", "llama3.1:8b")``.
    """
    prefix, sep, rest = ref.partition(":")
    kind = _KINDS.get(prefix)
    return (kind, rest) if sep and kind is not None else (provider, ref)


class ConfigRequest(BaseModel):
    """Explicit values for one call: the ``request`` layer. Every field is optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider | None = None
    model: Name | None = None
    parameters: LLMParameters = LLMParameters()


class ResolvedConfig(BaseModel):
    """What a call of ``user_id`` for ``task_type`` uses, with the layer behind each field.

    ``sources`` maps ``provider``, ``model`` and every set parameter field to its ``Layer``;
    ``warnings`` says what was skipped and why. ``parameters.fallback_models`` entries are
    qualified ``"provider:model"`` (see ``fallback_chain``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider
    model: str
    parameters: LLMParameters
    sources: Mapping[str, Layer]
    warnings: tuple[str, ...] = ()
    user_id: str | None
    task_type: str
    tier: str
    template: str | None = None
    template_label: str | None = None

    @property
    def fallback_chain(self) -> tuple[tuple[Provider, str], ...]:
        """The fallback models as (provider, model) pairs, in order."""
        return tuple(parse_model_ref(ref, self.provider)
                     for ref in self.parameters.fallback_models)

    def explain(self) -> str:
        """A few lines for people: each field with its value and source, then the warnings."""
        who = "no user" if self.user_id is None else f"user {self.user_id!r}"
        lines = [f"{who}, task {self.task_type!r}, tier {self.tier!r}:",
                 f"  provider: {self.provider} ({self.sources['provider']})",
                 f"  model: {self.model} ({self.sources['model']})"]
        for name in PARAMETER_FIELDS:
            layer = self.sources.get(name)
            value = getattr(self.parameters, name)
            lines.append(f"  {name}: " + ("unset" if layer is None else f"{value} ({layer})"))
        if self.template is not None:
            label = "" if self.template_label is None else f"@{self.template_label}"
            lines.append(f"  template: {self.template}{label} ({self.sources['template']})")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Availability:
    """Which provider kinds may be used, and why each of the others may not.

    Build it with ``Availability.of``. A kind is usable when it has an enabled provider
    registry row whose base URL the client can use (``servable``); a kind whose rows are all
    disabled or broken is not. A kind without rows is usable
    only if it is ``echo`` or the settings or environment configure it. Settings with
    ``enabled = false`` turn a kind off whatever the registry says.

    Attributes:
        usable: the usable kinds, in the order ``first_available`` tries them: registry
            kinds by provider name, then configured kinds, then echo.
        unusable: for each other kind, why (completes "provider 'x' ...").
    """

    usable: tuple[Provider, ...]
    unusable: Mapping[Provider, str] = field(default_factory=dict)

    @classmethod
    def of(cls, providers: Sequence[ProviderRecord], settings: LLMSettings,
           configured: frozenset[Provider]) -> Availability:
        """The availability the registry rows, the settings and ``configured`` imply."""
        ordered = [p.kind for p in sorted(providers, key=lambda p: p.name) if servable(p)]
        registered = {p.kind for p in providers}
        ordered += [k for k in PROVIDERS if k in configured and k not in registered]
        if "echo" not in registered:
            ordered.append("echo")
        broken = {p.kind for p in providers if p.enabled and not servable(p)}
        unusable = {k: _unusable_reason(k, settings, registered, broken) for k in PROVIDERS}
        usable = tuple(dict.fromkeys(k for k in ordered if settings.provider_enabled(k)))
        return cls(usable, {k: why for k, why in unusable.items() if k not in usable})

    def problem(self, kind: Provider) -> str | None:
        """Why ``kind`` may not be used, or None when it may."""
        if kind in self.usable:
            return None
        return f"provider {kind!r} " + self.unusable.get(kind, "is not available")


def servable(record: ProviderRecord) -> bool:
    """Whether a registry row may be offered: enabled, with a base URL the client can use."""
    return record.enabled and (record.base_url is None
                               or base_url_problem(record.base_url) is None)


def _unusable_reason(kind: Provider, settings: LLMSettings, registered: set[Provider],
                     broken: set[Provider]) -> str:
    if not settings.provider_enabled(kind):
        return f"is disabled in settings (llm.providers.{kind}.enabled = false)"
    if kind in broken:
        return ("has registry rows only with a base URL the HTTP client cannot use "
                "(GET /api/admin/providers says which)")
    if kind in registered:
        return "is disabled in the provider registry"
    return "is not configured (no registry entry, no api_key or base_url in settings)"


def build_catalog(providers: Sequence[ProviderRecord],
                  models: Mapping[str, Sequence[ProviderModel]]) -> Catalog:
    """The catalog per kind from the enabled registry rows and their discovered models.

    ``models`` maps a registry name to its catalog. Several rows of one kind pool their
    models; a model known with two context windows keeps the smaller one.
    """
    catalog: dict[Provider, dict[str, int | None]] = {}
    for record in providers:
        if not servable(record):
            continue
        known = catalog.setdefault(record.kind, {})
        for entry in models.get(record.name, ()):
            known[entry.model] = _smaller(known.get(entry.model), entry.context_window)
    return catalog


def _smaller(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class ResolutionInputs:
    """Every layer, as loaded from the store and settings, for one resolution.

    Attributes:
        task_type: the task type resolved for.
        settings: the system defaults, task types and tiers.
        availability: which provider kinds may be used.
        catalog: known models per kind; an empty or missing catalog accepts any model.
        user_id: the user, or None for a call on nobody's behalf.
        tier: the tier from the user's profile; None when there is no profile.
        request: this call's explicit values.
        task_override: the user's override for ``task_type``.
        user_configs: all of the user's provider configs (the default among them).
        global_configs: the global configs of ``task_type``, of any tiers.
    """

    task_type: str
    settings: LLMSettings
    availability: Availability
    catalog: Catalog = field(default_factory=dict)
    user_id: str | None = None
    tier: str | None = None
    request: ConfigRequest | None = None
    task_override: TaskOverride | None = None
    user_configs: tuple[UserLLMConfig, ...] = ()
    global_configs: tuple[GlobalConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class _Candidate:
    layer: Layer
    provider: Provider | None
    model: str | None
    parameters: LLMParameters
    scope: Provider | None = None  # parameters apply only when this provider is resolved


@dataclass(frozen=True, slots=True)
class _Pair:
    provider: Provider
    model: str
    provider_layer: Layer
    model_layer: Layer


class _Resolution:
    """One run of the rules over ``ResolutionInputs``, collecting warnings as it goes."""

    def __init__(self, inputs: ResolutionInputs) -> None:
        self.inputs = inputs
        self.settings = inputs.settings
        self.warnings: list[str] = []
        self.tier = self._effective_tier()
        self.candidates = self._candidates()

    def skip(self, layer: Layer, what: str, why: str) -> None:
        self.warnings.append(f"{layer}: skipped {what}: {why}")

    # -- the layers ---------------------------------------------------------------------

    def _effective_tier(self) -> str:
        tier, tiers = self.inputs.tier, self.settings.tiers
        if tier is None or tier in tiers:
            return tier or self.settings.default_tier
        self.skip(Layer.TIER_CONFIG, f"tier {tier!r} of user {self.inputs.user_id!r}",
                  f"not one of the configured tiers ({', '.join(tiers)}); resolved as "
                  f"{self.settings.default_tier!r}")
        return self.settings.default_tier

    def _candidates(self) -> list[_Candidate]:
        i = self.inputs
        found: list[_Candidate] = []
        if i.request is not None:
            found.append(_Candidate(Layer.REQUEST, i.request.provider, i.request.model,
                                    i.request.parameters))
        if i.task_override is not None:
            o = i.task_override
            found.append(_Candidate(Layer.USER_TASK_OVERRIDE, o.provider, o.model, o.parameters))
        default = next((c for c in i.user_configs if c.is_default), None)
        if default is not None:
            found.append(_Candidate(Layer.USER_DEFAULT, default.provider, default.model,
                                    default.parameters, scope=default.provider))
        found.extend(self._global_candidates())
        found.append(self._system_candidate())
        return found

    def _global_candidates(self) -> Iterator[_Candidate]:
        by_tier = {g.tier: g for g in self.inputs.global_configs}
        for layer, tier in ((Layer.TIER_CONFIG, self.tier), (Layer.GLOBAL_CONFIG, ANY_TIER)):
            config = by_tier.get(tier)
            if config is not None:
                yield _Candidate(layer, config.provider, config.model, config.parameters)

    def _system_candidate(self) -> _Candidate:
        task = self.settings.task_defaults(self.inputs.task_type)
        parameters = _overlay(task.parameters, self.settings.system_parameters())
        if task.provider is not None and task.model is not None:
            return _Candidate(Layer.SYSTEM_DEFAULT, task.provider, task.model, parameters)
        return _Candidate(Layer.SYSTEM_DEFAULT, self.settings.default_provider,
                          self.settings.default_model, parameters)

    def user_config(self, provider: Provider) -> UserLLMConfig | None:
        return next((c for c in self.inputs.user_configs if c.provider == provider), None)

    # -- validity -----------------------------------------------------------------------

    def model_problem(self, provider: Provider, model: str) -> str | None:
        known = self.inputs.catalog.get(provider)
        if known and model not in known:
            return f"model {model!r} is not in the {provider} catalog"
        return None

    def pair_problem(self, provider: Provider, model: str) -> str | None:
        return self.inputs.availability.problem(provider) or self.model_problem(provider, model)

    def limit_problem(self, name: str, value: Any, pair: _Pair) -> str | None:
        if name == "max_tokens":
            window = self.inputs.catalog.get(pair.provider, {}).get(pair.model)
            if window is not None and value > window:
                return (f"exceeds the {window}-token context window of "
                        f"{pair.provider}:{pair.model}")
        if name == "temperature" and pair.provider == "anthropic" and (
                value > ANTHROPIC_MAX_TEMPERATURE):
            return f"anthropic accepts a temperature of at most {ANTHROPIC_MAX_TEMPERATURE}"
        return None


# -- provider and model --------------------------------------------------------------------


def _pick_pair(r: _Resolution) -> _Pair:
    request = r.inputs.request
    if request is not None and request.provider is not None:
        found = _requested_provider(r, request.provider, request.model)
        if found is not None:
            return found
        return _stored_pair(r)
    below = _stored_pair(r)
    if request is None or request.model is None:
        return below
    problem = r.model_problem(below.provider, request.model)
    if problem is not None:
        r.skip(Layer.REQUEST, f"model {request.model!r}", problem)
        return below
    return _Pair(below.provider, request.model, below.provider_layer, Layer.REQUEST)


def _stored_pair(r: _Resolution) -> _Pair:
    for c in r.candidates:
        if c.layer is Layer.REQUEST or c.provider is None or c.model is None:
            continue
        problem = r.pair_problem(c.provider, c.model)
        if problem is None:
            return _Pair(c.provider, c.model, c.layer, c.layer)
        r.skip(c.layer, f"{c.provider}:{c.model}", problem)
    return _first_available(r)


def _requested_provider(r: _Resolution, provider: Provider, model: str | None) -> _Pair | None:
    problem = r.inputs.availability.problem(provider)
    if model is not None:
        problem = problem or r.model_problem(provider, model)
        if problem is None:
            return _Pair(provider, model, Layer.REQUEST, Layer.REQUEST)
        r.skip(Layer.REQUEST, f"{provider}:{model}", problem)
        return None
    if problem is not None:
        r.skip(Layer.REQUEST, f"provider {provider!r}", problem)
        return None
    for layer, named in _models_for(r, provider):
        problem = r.model_problem(provider, named)
        if problem is None:
            return _Pair(provider, named, Layer.REQUEST, layer)
        r.skip(layer, f"{provider}:{named}", problem)
    r.skip(Layer.REQUEST, f"provider {provider!r}",
           "no layer names a model for it, settings give it no default_model and its catalog "
           "is empty; name a model in the request")
    return None


def _models_for(r: _Resolution, provider: Provider) -> Iterator[tuple[Layer, str]]:
    # Where the model of a request naming only a provider comes from, in order.
    own = r.user_config(provider)
    if own is not None:
        yield Layer.USER_PROVIDER_CONFIG, own.model
    for c in r.candidates:
        if c.layer is not Layer.REQUEST and c.provider == provider and c.model is not None:
            yield c.layer, c.model
    default = r.settings.provider_default_model(provider)
    if default is not None:
        yield Layer.SYSTEM_DEFAULT, default
    first = next(iter(r.inputs.catalog.get(provider, {})), None)
    if first is not None:
        yield Layer.FIRST_AVAILABLE, first


def _first_available(r: _Resolution) -> _Pair:
    for kind in r.inputs.availability.usable:
        known = r.inputs.catalog.get(kind, {})
        default = r.settings.provider_default_model(kind)
        model = default if default is not None and (not known or default in known) else (
            next(iter(known), None))
        if model is not None:
            return _Pair(kind, model, Layer.FIRST_AVAILABLE, Layer.FIRST_AVAILABLE)
    raise NoUsableProviderError(r.inputs.user_id, r.inputs.task_type, tuple(r.warnings))


# -- parameters ----------------------------------------------------------------------------


def _parameter_layers(r: _Resolution, pair: _Pair) -> list[_Candidate]:
    layers = list(r.candidates)
    own = r.user_config(pair.provider)
    if own is not None and not own.is_default:
        at = next(n for n, c in enumerate(layers) if c.layer not in _ABOVE_PROVIDER_CONFIG)
        layers.insert(at, _Candidate(Layer.USER_PROVIDER_CONFIG, own.provider, own.model,
                                     own.parameters, scope=own.provider))
    return [c for c in layers if c.scope is None or c.scope == pair.provider]


_ABOVE_PROVIDER_CONFIG = frozenset({Layer.REQUEST, Layer.USER_TASK_OVERRIDE, Layer.USER_DEFAULT})


def _merge_parameters(r: _Resolution, pair: _Pair,
                      ) -> tuple[dict[str, Any], dict[str, Layer]]:
    values: dict[str, Any] = {}
    sources: dict[str, Layer] = {}
    layers = _parameter_layers(r, pair)
    for name in PARAMETER_FIELDS:
        for c in layers:
            value = _field_value(r, c, name, pair)
            if value is not None:
                values[name], sources[name] = value, c.layer
                break
    return values, sources


def _field_value(r: _Resolution, c: _Candidate, name: str, pair: _Pair) -> Any:
    value = getattr(c.parameters, name)
    if name == "fallback_models":
        return _fallbacks(r, c.layer, value, pair) if value else None
    if value is None:
        return None
    problem = r.limit_problem(name, value, pair)
    if problem is not None:
        r.skip(c.layer, f"{name}={value}", problem)
        return None
    return value


def _fallbacks(r: _Resolution, layer: Layer, refs: tuple[str, ...],
               pair: _Pair) -> tuple[str, ...] | None:
    kept: dict[str, None] = {}
    for ref in refs:
        provider, model = parse_model_ref(ref, pair.provider)
        problem = r.pair_problem(provider, model) if model else "the model name is empty"
        if problem is not None:
            r.skip(layer, f"fallback {ref!r}", problem)
        elif (provider, model) != (pair.provider, pair.model):
            kept[f"{provider}:{model}"] = None
    return tuple(kept) or None


def _overlay(top: LLMParameters, base: LLMParameters) -> LLMParameters:
    """``top``'s set fields over ``base``."""
    merged = base.model_dump()
    merged.update({k: v for k, v in top.model_dump().items() if v is not None and v != ()})
    return LLMParameters.model_validate(merged)


def _pick_template(r: _Resolution) -> tuple[GlobalConfig | None, Layer | None]:
    by_tier = {g.tier: g for g in r.inputs.global_configs}
    for layer, tier in ((Layer.TIER_CONFIG, r.tier), (Layer.GLOBAL_CONFIG, ANY_TIER)):
        config = by_tier.get(tier)
        if config is not None and config.template is not None:
            return config, layer
    return None, None


def resolve_config(inputs: ResolutionInputs) -> ResolvedConfig:
    """Resolve provider, model, parameters and template from ``inputs`` (see the module doc).

    Raises:
        NoUsableProviderError: every layer was skipped and no provider kind is usable.
    """
    r = _Resolution(inputs)
    pair = _pick_pair(r)
    values, sources = _merge_parameters(r, pair)
    template, template_layer = _pick_template(r)
    if template_layer is not None:
        sources["template"] = template_layer
    return ResolvedConfig(
        provider=pair.provider, model=pair.model, parameters=LLMParameters(**values),
        sources={"provider": pair.provider_layer, "model": pair.model_layer, **sources},
        warnings=tuple(r.warnings), user_id=inputs.user_id, task_type=inputs.task_type,
        tier=r.tier, template=None if template is None else template.template,
        template_label=None if template is None else template.template_label)
