"""``overhead_ms_p50``: what beamish adds to one completion, against the bare SDK call.

Both sides talk to the same local server speaking the OpenAI wire format (the tests' fake
server, answering at once), interleaved call by call so drift on a noisy machine hits both:

* direct — ``openai.AsyncOpenAI(...).chat.completions.create`` (retries off);
* beamish — ``ConfigResolver.resolve`` (cached, as for every request after a user's first)
  then ``LLMClient.complete`` with the resolved configuration: timeout, retry policy,
  fallback chain, error translation, usage capture.

Recording the usage durably is not part of it: that is the store's group commit, measured by
``python -m bench store``.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import openai
from pydantic import SecretStr

from beamish.llm.providers.base import ChatMessage
from beamish.llm.providers.client import LLMClient
from beamish.llm.resolver import ConfigResolver
from beamish.llm.settings import LLMSettings, ProviderSettings
from beamish.store import open_store
from bench._harness import Report, now
from tests.llm.providers._fake_llm_server import FakeLLMServer

MODEL = "local-model"
PROMPT = "how much does beamish add to a call"


async def measure_overhead(report: Report, quick: bool) -> None:
    """Add ``overhead_ms_p50`` (goal <= 1 ms) and both medians to ``report``."""
    calls = 100 if quick else 1000
    with FakeLLMServer() as server, tempfile.TemporaryDirectory(prefix="beamish-bench-") as d:
        settings = LLMSettings(providers={"openai_compatible": ProviderSettings(
            base_url=server.openai_url, api_key=SecretStr(server.openai_key))})
        direct = openai.AsyncOpenAI(base_url=server.openai_url, api_key=server.openai_key,
                                    max_retries=0)
        async with open_store(f"sqlite:///{Path(d) / 'overhead.db'}") as store, \
                LLMClient.from_settings(settings, environ={}) as client:
            await store.upsert_profile("ada")
            await store.set_default("ada", "openai_compatible", MODEL)
            resolver = ConfigResolver(store, settings, environ={})
            messages = [ChatMessage(role="user", content=PROMPT)]

            async def through_beamish() -> None:
                config = await resolver.resolve("ada", "chat")
                await client.complete(config, messages)

            async def bare_sdk() -> None:
                await direct.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": PROMPT}])

            assert (await resolver.resolve("ada", "chat")).provider == "openai_compatible"
            ours: list[float] = []
            theirs: list[float] = []
            for n in range(calls + 20):
                for samples, call in ((ours, through_beamish), (theirs, bare_sdk)):
                    start = now()
                    await call()
                    if n >= 20:  # warm-up: connections, caches
                        samples.append((now() - start) * 1000)
            await direct.close()
    ours_p50, theirs_p50 = statistics.median(ours), statistics.median(theirs)
    report.add("completion_ms_p50", ours_p50, "ms")
    report.add("sdk_direct_ms_p50", theirs_p50, "ms")
    report.add("overhead_ms_p50", ours_p50 - theirs_p50, "ms", "<= 1")
    report.raw["overhead_calls"] = calls
