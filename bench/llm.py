"""LLM benchmark: config resolution, cached and cold, on a SQLite store.

Figures:

* ``resolve_cached_per_s`` — ``ConfigResolver.resolve`` calls per second when every
  (user, task, tier) is cached (goal: >= 200,000). Baseline in the same run:
  ``resolve_uncached_per_s``, the same calls through ``preview`` (store reads and the rules
  every time), and ``resolve_cached_speedup``, their ratio.
* ``resolve_cold_ms_p50`` / ``resolve_cold_ms_p95`` — one ``resolve`` right after its user
  was invalidated, as after a config write: the user's layers are read from the store and
  the rules run; the shared registry/catalog/global layers stay cached (goal: p95 <= 2 ms).
* ``resolve_cold_all_ms_p95`` — the same after ``invalidate_all``, as after a provider or
  global config write: the shared layers are read too (reported, no goal).
* ``overhead_ms_p50`` — beamish's completion (cached resolution + ``LLMClient.complete``)
  minus the bare openai SDK call to the same local server, medians of interleaved calls
  (goal: <= 1 ms); see ``bench/_overhead.py``.
* ``user_layers_read_ms_p50`` — the cold path's one query, ``Store.get_user_llm_layers``;
  baseline ``user_layers_naive_read_ms_p50``: the same data through ``get_profile``,
  ``list_configs`` and ``get_task_override``, measured interleaved with it.

The store holds ``USERS`` users over three tiers, each with a profile, two or three provider
configs and overrides for half the task types, three registered providers with catalogs of
``CATALOG_MODELS`` models, and a global config per task type and tier. The database is a
SQLite file with the store's durable pragmas, on local disk in a temporary directory.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from beamish.llm.hierarchy import ConfigRequest
from beamish.llm.resolver import ConfigResolver
from beamish.llm.settings import DEFAULT_TASK_TYPES, LLMSettings
from beamish.store import (
    GlobalConfig,
    LLMParameters,
    NewLLMConfig,
    ProviderModel,
    ProviderRecord,
    Store,
    TaskOverride,
    open_store,
)
from bench._harness import Report, now, percentile
from bench._overhead import measure_overhead

USERS = 1000
CATALOG_MODELS = 40
TIERS = ("free", "pro", "enterprise")
TASKS = tuple(DEFAULT_TASK_TYPES)
REGISTRY = (("openai", "openai"), ("anthropic", "anthropic"), ("local", "ollama"))
DISCOVERED = datetime(2026, 1, 1, tzinfo=UTC)


def _model(kind: str, n: int) -> str:
    return f"{kind}-model-{n:02d}"


async def _fill(store: Store) -> list[str]:
    for name, kind in REGISTRY:
        await store.register_provider(ProviderRecord.model_validate({"name": name,
                                                                     "kind": kind}))
        await store.replace_provider_models(name, [
            ProviderModel(provider=name, model=_model(kind, n), context_window=128_000,
                          discovered_at=DISCOVERED) for n in range(CATALOG_MODELS)])
    for task in TASKS:
        for tier in ("*", *TIERS[1:]):
            await store.set_global_config(GlobalConfig.model_validate({
                "task_type": task, "tier": tier, "provider": "openai",
                "model": _model("openai", len(tier)), "parameters": {"max_tokens": 4096}}))
    rng = random.Random(4)
    users = [f"user{n:05d}" for n in range(USERS)]
    for user in users:
        await _fill_user(store, user, rng)
    return users


async def _fill_user(store: Store, user: str, rng: random.Random) -> None:
    await store.upsert_profile(user, tier=rng.choice(TIERS))
    for kind in ("openai", "anthropic", "ollama")[:rng.randint(2, 3)]:
        await store.add_config(user, NewLLMConfig.model_validate({
            "provider": kind, "model": _model(kind, rng.randrange(CATALOG_MODELS)),
            "is_default": kind == "anthropic",
            "parameters": {"temperature": 0.5, "fallback_models": [_model(kind, 0)]}}))
    for task in rng.sample(TASKS, len(TASKS) // 2):
        await store.set_task_override(user, TaskOverride.model_validate({
            "task_type": task, "provider": "openai", "model": _model("openai", 1),
            "parameters": LLMParameters(max_tokens=2048)}))


async def _cached_per_s(resolver: ConfigResolver, keys: list[tuple[str, str]],
                        rounds: int) -> float:
    for user, task in keys:
        await resolver.resolve(user, task)
    start = now()
    for _ in range(rounds):
        for user, task in keys:
            await resolver.resolve(user, task)
    return rounds * len(keys) / (now() - start)


async def _uncached_per_s(resolver: ConfigResolver, keys: list[tuple[str, str]]) -> float:
    start = now()
    for user, task in keys:
        await resolver.preview(user, task)
    return len(keys) / (now() - start)


async def _cold_ms(resolver: ConfigResolver, keys: list[tuple[str, str]],
                   everything: bool) -> list[float]:
    samples = []
    await resolver.resolve(None, "chat")  # the shared layers, for the per-user case
    for user, task in keys:
        if everything:
            resolver.invalidate_all()
        else:
            resolver.invalidate_user(user)
        start = now()
        await resolver.resolve(user, task)
        samples.append((now() - start) * 1000)
    return samples


async def _reads_ms(store: Store, keys: list[tuple[str, str]]) -> tuple[list[float],
                                                                          list[float]]:
    one: list[float] = []
    naive: list[float] = []
    for user, task in keys:
        start = now()
        await store.get_user_llm_layers(user, task)
        middle = now()
        await store.get_profile(user)
        await store.list_configs(user)
        await store.get_task_override(user, task)
        one.append((middle - start) * 1000)
        naive.append((now() - middle) * 1000)
    return one, naive


async def _measure(report: Report, url: str, quick: bool) -> None:
    async with open_store(url) as store:
        users = await _fill(store)
        resolver = ConfigResolver(store, LLMSettings(), environ={})
        rng = random.Random(7)
        keys = [(rng.choice(users), rng.choice(TASKS)) for _ in range(1000)]
        cold_keys = keys[:200] if quick else keys
        cached = await _cached_per_s(resolver, keys, 20 if quick else 200)
        uncached = await _uncached_per_s(resolver, cold_keys)
        cold = await _cold_ms(resolver, cold_keys, everything=False)
        cold_all = await _cold_ms(resolver, cold_keys[:100] if quick else cold_keys[:300],
                                  everything=True)
        with_request = await _request_per_s(resolver, keys[:200])
        reads, naive_reads = await _reads_ms(store, cold_keys)
    report.add("resolve_cached_per_s", cached, "calls/s", ">= 200000")
    report.add("resolve_uncached_per_s", uncached, "calls/s")
    report.add("resolve_cached_speedup", cached / uncached, "x")
    report.add("resolve_cached_request_per_s", with_request, "calls/s")
    report.add("resolve_cold_ms_p50", percentile(cold, 50), "ms")
    report.add("resolve_cold_ms_p95", percentile(cold, 95), "ms", "<= 2")
    report.add("resolve_cold_all_ms_p95", percentile(cold_all, 95), "ms")
    report.add("user_layers_read_ms_p50", percentile(reads, 50), "ms")
    report.add("user_layers_naive_read_ms_p50", percentile(naive_reads, 50), "ms")
    report.raw.update({"cold_ms": cold, "cold_all_ms": cold_all, "users": USERS,
                       "catalog_models": CATALOG_MODELS, "keys": len(keys)})


async def _request_per_s(resolver: ConfigResolver, keys: list[tuple[str, str]]) -> float:
    request = ConfigRequest(parameters=LLMParameters(temperature=0.1))
    for user, task in keys:
        await resolver.resolve(user, task)
    start = now()
    for user, task in keys:
        await resolver.resolve(user, task, request=request)
    return len(keys) / (now() - start)


def run(quick: bool) -> Report:
    """Fill a SQLite store, then measure cached, uncached and cold resolution."""
    report = Report("llm")
    with tempfile.TemporaryDirectory(prefix="beamish-bench-") as folder:
        asyncio.run(_measure(report, f"sqlite:///{Path(folder) / 'llm.db'}", quick))
    asyncio.run(measure_overhead(report, quick))
    return report
