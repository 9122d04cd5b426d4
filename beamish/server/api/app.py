"""Building the API: a standalone app (``create_app``), or routes for a host app.

``create_app`` is the whole HTTP API as one FastAPI app. It runs its own ``Application``
through ``beamish.lifespan(settings)``, or serves one the caller already runs
(``runtime=``, e.g. ``beamish serve`` starting uvicorn inside ``async with Application(...)``).

``install_api(app)`` adds the routes and the error handlers to a host app whose lifespan
runs the runtime (``FastAPI(lifespan=beamish.lifespan())``). ``api_router()`` is the routes
alone; without ``install_error_handlers(app)`` beamish errors are FastAPI's plain 500s.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI

from beamish.application import Application, lifespan
from beamish.auth import dev_mode_warning
from beamish.server.api import admin, health, openai_compat, sessions, users
from beamish.server.api.deps import AUTH_STATE, ApiAuth
from beamish.server.api.errors import install_error_handlers
from beamish.server.api.limits import BodyLimitMiddleware
from beamish.settings import Settings

log = logging.getLogger("beamish.server.api")

TITLE = "beamish"
DESCRIPTION = ("Per-user LLM configuration, sessions and usage; session-scoped and "
               "OpenAI-compatible completions. Authenticate with `Authorization: Bearer "
               "<token>` (`beamish token create --user U [--admin]`).")


def api_router() -> APIRouter:
    """Every route of the API: ``/api/...``, ``/v1/...`` and ``/health``."""
    router = APIRouter()
    for part in (health.router, users.router, sessions.router, admin.router,
                 openai_compat.router):
        router.include_router(part)
    return router


def install_api(app: FastAPI, *, auth: ApiAuth | None = None) -> None:
    """Add the API's routes, error handlers and body limits (``limits``) to ``app``.

    Args:
        app: the host app; its lifespan must run a ``Application`` (``beamish.lifespan()``).
        auth: how callers are authenticated (token auth keyed from the runtime's settings,
            else ``BEAMISH_SECRET_KEY``, if None).
    """
    app.include_router(api_router())
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)  # bounds every body before an endpoint reads it
    if auth is not None:
        setattr(app.state, AUTH_STATE, auth)
        if auth.dev_mode:
            log.warning("%s", dev_mode_warning(getattr(auth.authenticator, "host", "?")))


def create_app(settings: Settings | None = None, *, runtime: Application | None = None,
               auth: ApiAuth | None = None) -> FastAPI:
    """The HTTP API as a FastAPI app; OpenAPI at ``/openapi.json``, docs at ``/docs``.

    Args:
        settings: the runtime's settings (``Settings()`` if None); ignored with ``runtime``.
        runtime: a runtime the caller runs; None to run one for the app's lifetime.
        auth: how callers are authenticated (see ``install_api``); ``ApiAuth.tokens`` or
            ``ApiAuth.development(host)``.
    """
    if runtime is None:
        app = FastAPI(title=TITLE, description=DESCRIPTION, lifespan=lifespan(settings))
    else:
        app = FastAPI(title=TITLE, description=DESCRIPTION)
        app.state.beamish = runtime
    install_api(app, auth=auth)
    return app


__all__ = ["api_router", "create_app", "install_api"]
