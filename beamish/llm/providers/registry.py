"""Which providers exist: the store's registry rows, then settings, then the environment.

``provider_configs`` decides, without I/O, the providers a client gets:

1. every enabled registry row (``ProviderRecord``) whose kind the settings do not turn off,
   named as the row is, with the row's base URL and its key decrypted from the ciphertext;
2. every kind the settings configure (``llm.providers.<kind>`` with an ``api_key`` or a
   ``base_url``, or ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` set) that no enabled row
   covers, named after the kind;
3. ``echo``, unless a row covers it or the settings turn it off.

A provider that cannot be built — a key that will not decrypt, an ``openai`` provider without
a key, an ``openai_compatible`` one without a base URL, a base URL the HTTP client refuses
(``base_url_problem``) — is not dropped silently: it lands in the *unavailable* map with the
reason, which calls to it report. Base URLs default per kind (``DEFAULT_BASE_URLS``);
Ollama's is its OpenAI-compatible ``/v1`` endpoint. The kinds ``ollama``, ``tgi`` and
``openai_compatible`` are spoken to by the lean wire client (``wire.OpenAIWireProvider``),
unless the environment's proxy variables route their base URL through a proxy; ``openai``
by the official SDK (``openai.OpenAIProvider``), ``anthropic`` by its own.

``base_url_problem`` (``beamish.llm.urls``) is the one rule of a valid base URL, shared with
the HTTP API and config resolution, so what the API accepts is what the client can build.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from beamish.llm.providers.base import LLMProvider
from beamish.llm.providers.echo import EchoProvider
from beamish.llm.providers.keys import ApiKey, decrypt_key, find_api_key
from beamish.llm.settings import LLMSettings
from beamish.llm.urls import base_url_problem
from beamish.store.errors import SecretKeyError
from beamish.store.models import Provider, ProviderRecord
from beamish.store.secrets import SecretBox

DEFAULT_BASE_URLS: Mapping[Provider, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://localhost:11434/v1",
    "tgi": "http://localhost:8080/v1",
}
"""Where each kind listens unless a registry row or the settings say otherwise."""

_NEEDS_KEY: frozenset[Provider] = frozenset({"openai", "anthropic"})


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Everything needed to build one provider; its ``repr`` shows only the masked key."""

    name: str
    kind: Provider
    base_url: str | None = None
    api_key: ApiKey | None = field(default=None)

    def problem(self) -> str | None:
        """Why this provider cannot be built, or None if it can."""
        if self.kind in _NEEDS_KEY and self.api_key is None:
            variable = "OPENAI_API_KEY" if self.kind == "openai" else "ANTHROPIC_API_KEY"
            return (f"provider {self.name!r} ({self.kind}) has no API key; register it with "
                    f"one, or set llm.providers.{self.kind}.api_key or {variable}")
        if self.kind == "openai_compatible" and not self.base_url:
            return (f"provider {self.name!r} (openai_compatible) has no base URL; register it "
                    "with one, or set llm.providers.openai_compatible.base_url")
        url_problem = None if self.base_url is None else base_url_problem(self.base_url)
        if url_problem is not None:
            return (f"provider {self.name!r} has a base URL the HTTP client cannot use: "
                    f"{url_problem}; correct it in the registry (or llm.providers."
                    f"{self.kind}.base_url)")
        return None


def unserved_defaults(settings: LLMSettings, serving: Iterable[Provider]) -> list[str]:
    """A warning for each provider kind the settings default to that no provider serves.

    Such a default is skipped by resolution, so calls fall to the first usable provider —
    the offline echo, when no other is configured — which answers labelled ``offline``. Said
    at start, once, so a missing key is not mistaken for a working model.
    """
    served = set(serving)
    named = {settings.default_provider: "llm.default_provider"}
    for task, defaults in sorted(settings.task_types.items()):
        if defaults.provider is not None:
            named.setdefault(defaults.provider, f"llm.task_types.{task}.provider")
    warnings = []
    for kind, where in named.items():
        if kind in served:
            continue
        problem = ProviderConfig(name=kind, kind=kind).problem() or (
            f"no {kind} provider is configured; register one, or set llm.providers.{kind}")
        warnings.append(f"{where} is {kind!r}, but it cannot be used: {problem}. Calls go to "
                        "the first usable provider instead (the offline echo provider if none "
                        "is, its answers labelled offline)")
    return warnings


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """The providers to build, and those that cannot be, with the reason.

    ``disabled`` names the unavailable ones that were turned off on purpose (in the registry
    or the settings); every other unavailable provider is ``broken``: configured, but
    impossible to build as configured.
    """

    configs: tuple[ProviderConfig, ...]
    unavailable: Mapping[str, tuple[Provider, str]]
    disabled: frozenset[str] = frozenset()

    @property
    def broken(self) -> Mapping[str, str]:
        """The providers configured but impossible to build, by name, with the reason."""
        return {name: reason for name, (_, reason) in self.unavailable.items()
                if name not in self.disabled}


def provider_configs(settings: LLMSettings, records: Iterable[ProviderRecord] = (), *,
                     environ: Mapping[str, str],
                     box: Callable[[], SecretBox] | None = None) -> ProviderPlan:
    """Plan the providers from the registry, the settings and ``environ``; see module doc.

    Args:
        settings: the ``[llm]`` settings.
        records: the registry rows (``Store.list_providers()``).
        environ: where ``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` are read.
        box: makes the ``SecretBox`` that decrypts stored keys; called only if a row has
            one. Defaults to ``SecretBox.from_env(environ)``.
    """
    configs: list[ProviderConfig] = []
    unavailable: dict[str, tuple[Provider, str]] = {}
    make_box = box or (lambda: SecretBox.from_env(environ))
    rows = sorted(records, key=lambda r: r.name)
    for record in rows:
        _plan_record(record, settings, environ, make_box, configs, unavailable)
    covered = {c.kind for c in configs}
    for kind in sorted(settings.configured_providers(environ) - covered):
        _add(_config_from_settings(kind, settings, environ), configs, unavailable)
    if "echo" not in covered and settings.provider_enabled("echo"):
        configs.append(ProviderConfig(name="echo", kind="echo"))
    names = {c.name for c in configs}
    disabled = frozenset(r.name for r in rows
                         if not r.enabled or not settings.provider_enabled(r.kind))
    return ProviderPlan(configs=tuple(configs),
                        unavailable={n: r for n, r in unavailable.items() if n not in names},
                        disabled=disabled)


def build_provider(config: ProviderConfig) -> LLMProvider:
    """The provider ``config`` describes; raises ``ValueError`` naming its ``problem()``."""
    problem = config.problem()
    if problem is not None:
        raise ValueError(problem)
    base_url = config.base_url or DEFAULT_BASE_URLS.get(config.kind, "")
    if config.kind == "echo":
        return EchoProvider(config.name)
    # The SDKs take seconds to import; load one only when a provider of its kind is built.
    if config.kind == "anthropic":
        from beamish.llm.providers.anthropic import AnthropicProvider

        assert config.api_key is not None  # problem() said so
        return AnthropicProvider(config.name, base_url=base_url, api_key=config.api_key)
    if config.kind != "openai" and not _proxied(base_url):
        from beamish.llm.providers.wire import OpenAIWireProvider

        return OpenAIWireProvider(config.name, base_url=base_url, api_key=config.api_key,
                                  kind=config.kind)
    from beamish.llm.providers.openai import OpenAIProvider

    return OpenAIProvider(config.name, base_url=base_url, api_key=config.api_key,
                          kind=config.kind)


def _proxied(base_url: str) -> bool:
    """Whether the environment's ``*_proxy`` variables send ``base_url`` through a proxy,
    as httpx (under the SDK) would; the wire client speaks to servers directly only."""
    proxies = urllib.request.getproxies()
    parts = urlsplit(base_url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return bool(proxy) and not urllib.request.proxy_bypass(parts.hostname or "")


def _plan_record(record: ProviderRecord, settings: LLMSettings, environ: Mapping[str, str],
                 make_box: Callable[[], SecretBox], configs: list[ProviderConfig],
                 unavailable: dict[str, tuple[Provider, str]]) -> None:
    if not record.enabled:
        unavailable[record.name] = (record.kind, f"provider {record.name!r} is disabled in "
                                                 "the registry")
        return
    if not settings.provider_enabled(record.kind):
        unavailable[record.name] = (record.kind, f"provider kind {record.kind!r} is turned off "
                                                 f"by llm.providers.{record.kind}.enabled")
        return
    try:
        key = _record_key(record, settings, environ, make_box)
    except SecretKeyError as error:
        unavailable[record.name] = (record.kind, f"provider {record.name!r} has a stored API "
                                                 f"key that cannot be used: {error}")
        return
    settings_entry = settings.providers.get(record.kind)
    base_url = record.base_url or (settings_entry.base_url if settings_entry else None)
    _add(ProviderConfig(name=record.name, kind=record.kind, base_url=base_url, api_key=key),
         configs, unavailable)


def _record_key(record: ProviderRecord, settings: LLMSettings, environ: Mapping[str, str],
                make_box: Callable[[], SecretBox]) -> ApiKey | None:
    if record.api_key_ciphertext is not None:
        return decrypt_key(record.api_key_ciphertext, make_box())
    entry = settings.providers.get(record.kind)
    return find_api_key(record.kind, configured=entry.api_key if entry else None,
                        environ=environ)


def _config_from_settings(kind: Provider, settings: LLMSettings,
                          environ: Mapping[str, str]) -> ProviderConfig:
    entry = settings.providers.get(kind)
    key = find_api_key(kind, configured=entry.api_key if entry else None, environ=environ)
    return ProviderConfig(name=kind, kind=kind, base_url=entry.base_url if entry else None,
                          api_key=key)


def _add(config: ProviderConfig, configs: list[ProviderConfig],
         unavailable: dict[str, tuple[Provider, str]]) -> None:
    problem = config.problem()
    if problem is None:
        configs.append(config)
    else:
        unavailable[config.name] = (config.kind, problem)
