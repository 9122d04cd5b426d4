"""beamish: an Elixir/OTP-style actor runtime on asyncio, and per-user LLM sessions built on it.

Everything in one ``async with``::

    import beamish

    async with beamish.Application() as rt:      # SQLite + the echo provider unless configured
        session = await rt.sessions.open(None, "ada")
        answer = await rt.complete(session.session_id, "hello")

Packages and modules in layers, top down; a part imports only parts of the layers below
it (``tests/test_layers.py`` holds the exact map)::

    cli                        ``beamish`` on the command line
    web                        the web app: chat and settings pages, served beside the API
    server                     the HTTP API (FastAPI) and ``beamish serve``
    chat                       the chat product: the conversation channel and its history
    application                ``Application``: the store, the LLM client and the session tree
    sessions, jobs, settings   session contexts and the janitor; durable LLM jobs (their
                               workers, outputs and feedback); the configuration
    auth, request_log,         user tokens; one JSON line per LLM request;
    channels, store, llm,      Phoenix channels; configs and usage ledger; LLM providers;
    templates                  versioned prompt templates in a sandbox
    runtime, compact_json      actors, supervisors, registry; fast JSON

Within a layer: ``channels`` uses ``auth``, ``llm`` uses ``store``, ``settings`` uses
``sessions`` and ``jobs`` (their tables), ``jobs`` uses ``sessions``. ``beamish.channels``
is a generic framework (runtime, auth and Starlette only), so an application can serve its
own channels without the HTTP app.

The names below load on first use, so ``import beamish.runtime`` stays light.
``beamish.Runtime`` is the old name of ``Application``: it still works, with a
``DeprecationWarning``, until the next release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beamish.application import (
        Application,
        SessionCompletion,
        SessionEmbeddings,
        SessionStream,
        lifespan,
    )
    from beamish.settings import Settings

_LAZY = {
    "Application": "beamish.application",
    "SessionCompletion": "beamish.application",
    "SessionEmbeddings": "beamish.application",
    "SessionStream": "beamish.application",
    "lifespan": "beamish.application",
    "Settings": "beamish.settings",
}

__all__ = ["Application", "SessionCompletion", "SessionEmbeddings", "SessionStream", "Settings",
           "lifespan"]


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        warnings.warn("beamish.Runtime is now beamish.Application; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        name = "Application"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beamish' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
