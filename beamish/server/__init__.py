"""The HTTP API and ``beamish serve``: the top of beamish, which nothing else imports.

* :mod:`.api` — the FastAPI app/router: users' configs and usage, admin, sessions with SSE
  completions, OpenAI-compatible ``/v1``; ``create_app``, ``install_api``, ``api_router``.
* :mod:`.mount` — :func:`mount_beamish`: the API, the socket and the runtime in a host app.
* :mod:`.serve` — :class:`BeamishServer`: runtime + API + conversation sockets on one port.
* :mod:`.websocket_protocol` — uvicorn's WebSocket protocol, lean for many idle sockets.
* :mod:`.connections` — connection caps, first-request deadlines and shortage reports, as
  plain decisions; :mod:`.connection_guard` applies them to uvicorn's connections.
* :mod:`.keyfile` — the generated master key.

Authentication lives below, in :mod:`beamish.auth` (the channels use it too), and the
``[server]`` settings in :mod:`beamish.settings`; ``Principal``, ``TokenSigner``,
``issue_token``, ``verify_token``, ``AuthError`` and ``ServerSettings`` are still reachable
here. The names below load on first use, so ``import beamish.server`` does not import
FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beamish.auth import AuthError, Principal, TokenSigner, issue_token, verify_token
    from beamish.server.api import ApiAuth, api_router, create_app, install_api
    from beamish.server.mount import mount_beamish
    from beamish.server.serve import BeamishServer
    from beamish.settings import ServerSettings

_LAZY = {
    "ApiAuth": "beamish.server.api", "api_router": "beamish.server.api",
    "create_app": "beamish.server.api", "install_api": "beamish.server.api",
    "Principal": "beamish.auth", "TokenSigner": "beamish.auth",
    "issue_token": "beamish.auth", "verify_token": "beamish.auth",
    "AuthError": "beamish.auth", "BeamishServer": "beamish.server.serve",
    "ServerSettings": "beamish.settings", "mount_beamish": "beamish.server.mount",
}

__all__ = [
    "ApiAuth", "AuthError", "BeamishServer", "Principal", "ServerSettings", "TokenSigner",
    "api_router", "create_app", "install_api", "issue_token", "mount_beamish", "verify_token",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'beamish.server' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
