"""The HTTP API, authentication and ``beamish serve``.

* :mod:`.api` — the FastAPI app/router: users' configs and usage, admin, sessions with SSE
  completions, OpenAI-compatible ``/v1``; ``create_app``, ``install_api``, ``api_router``.
* :mod:`.auth` — signed user tokens (``issue_token``, ``verify_token``, ``Principal``), dev mode.
* :mod:`.serve` — :class:`BeamishServer`: runtime + API + conversation sockets on one port.
* :mod:`.settings` — ``[server]`` settings; :mod:`.keyfile` — the generated master key.
* :mod:`.errors` — authentication errors.

The names below load on first use: ``beamish.settings`` imports ``beamish.server.settings``,
and the API imports the settings, so an eager import here would be circular.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beamish.server.api import ApiAuth, api_router, create_app, install_api
    from beamish.server.auth import Principal, TokenSigner, issue_token, verify_token
    from beamish.server.errors import AuthError
    from beamish.server.serve import BeamishServer
    from beamish.server.settings import ServerSettings

_LAZY = {
    "ApiAuth": "beamish.server.api", "api_router": "beamish.server.api",
    "create_app": "beamish.server.api", "install_api": "beamish.server.api",
    "Principal": "beamish.server.auth", "TokenSigner": "beamish.server.auth",
    "issue_token": "beamish.server.auth", "verify_token": "beamish.server.auth",
    "AuthError": "beamish.server.errors", "BeamishServer": "beamish.server.serve",
    "ServerSettings": "beamish.server.settings",
}

__all__ = [
    "ApiAuth", "AuthError", "BeamishServer", "Principal", "ServerSettings", "TokenSigner",
    "api_router", "create_app", "install_api", "issue_token", "verify_token",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beamish.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
