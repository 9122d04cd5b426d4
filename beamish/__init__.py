"""beamish: an Elixir/OTP-style actor runtime on asyncio, and per-user LLM sessions built on it.

Everything in one ``async with``::

    import beamish

    async with beamish.Runtime() as rt:      # SQLite + the echo provider unless configured
        session = await rt.sessions.open(None, "ada")
        answer = await rt.complete(session.session_id, "hello")

Packages: ``beamish.runtime`` (actors, supervisors, registry), ``beamish.store`` (configs,
usage ledger), ``beamish.llm`` (resolution, providers), ``beamish.sessions`` (session
contexts, janitor), ``beamish.channels`` (Phoenix channels), ``beamish.server`` (HTTP API).
The names below load on first use, so ``import beamish.runtime`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beamish.app import Runtime, SessionCompletion, SessionStream, lifespan
    from beamish.settings import Settings

_LAZY = {
    "Runtime": "beamish.app",
    "SessionCompletion": "beamish.app",
    "SessionStream": "beamish.app",
    "lifespan": "beamish.app",
    "Settings": "beamish.settings",
}

__all__ = ["Runtime", "SessionCompletion", "SessionStream", "Settings", "lifespan"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beamish' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
