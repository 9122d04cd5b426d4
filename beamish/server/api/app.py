"""Building the API: a standalone app (``create_app``), or routes for a host app.

``create_app`` is the whole HTTP API as one FastAPI app. It runs its own ``Application``
through ``beamish.lifespan(settings)``, or serves one the caller already runs
(``runtime=``, e.g. ``beamish serve`` starting uvicorn inside ``async with Application(...)``).

``install_api(app)`` adds the routes and the error handlers to a host app whose lifespan
runs the runtime (``FastAPI(lifespan=beamish.lifespan())``). ``api_router()`` is the routes
alone; without ``install_error_handlers(app)`` beamish errors are FastAPI's plain 500s. For
the Phoenix socket too, and the runtime, from one call: ``beamish.server.mount_beamish``.

Both check the master key when the app starts (:func:`require_secret_key`): a missing or
non-Fernet ``BEAMISH_SECRET_KEY`` fails the start with how to make one, rather than the
first request that needs it with a 500.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI

from beamish.application import Application, lifespan
from beamish.auth import SECRET_KEY_ENV, dev_mode_warning
from beamish.server.api import (
    admin,
    conversations,
    embeddings,
    health,
    jobs,
    openai_compat,
    sessions,
    templates,
    users,
)
from beamish.server.api.deps import AUTH_STATE, ApiAuth
from beamish.server.api.docs import install_docs
from beamish.server.api.errors import install_error_handlers
from beamish.server.api.limits import BodyLimitMiddleware
from beamish.server.api.openapi import install_openapi
from beamish.settings import Settings, check_secret_key

log = logging.getLogger("beamish.server.api")

TITLE = "beamish"
DESCRIPTION = ("Per-user LLM configuration, sessions and usage; session-scoped and "
               "OpenAI-compatible completions. Authenticate with `Authorization: Bearer "
               "<token>` (`beamish token create --user U [--admin]`).")


def api_router() -> APIRouter:
    """Every route of the API: ``/api/...``, ``/v1/...`` and ``/health``.

    The parts are tried in this order for every request, route by route, so the data plane
    (``/v1``, sessions) comes before the control plane (users, admin): a request for a
    completion is matched without testing every admin route first.
    """
    router = APIRouter()
    for part in (openai_compat.router, embeddings.router, sessions.router, health.router,
                 users.router, admin.router, templates.router, jobs.router,
                 conversations.router):
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
    install_openapi(app)  # every error response documented; 405 lists every method
    _check_key_at_start(app, optional=auth is not None and auth.dev_mode)
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
    # /docs is served from vendored files (install_docs); ReDoc would need a CDN.
    offline_docs: dict[str, Any] = {"docs_url": None, "redoc_url": None}
    if runtime is None:
        app = FastAPI(title=TITLE, description=DESCRIPTION,
                      lifespan=_key_checked(lifespan(settings), settings), **offline_docs)
    else:
        app = FastAPI(title=TITLE, description=DESCRIPTION, **offline_docs)
        app.state.beamish = runtime
    install_api(app, auth=auth)
    install_docs(app)
    return app


def require_secret_key(settings: Settings | None, *, optional: bool = False) -> None:
    """Raise ``InvalidSecretKeyError`` unless the master key is one or more Fernet keys.

    The key is ``settings.secret_key`` (which ``BEAMISH_SECRET_KEY`` sets), else the
    variable itself. ``optional``: a missing key is fine (dev mode), a malformed one is not.
    """
    secret = settings.secret_key if settings is not None else None
    key = secret.get_secret_value() if secret is not None else os.environ.get(SECRET_KEY_ENV)
    if optional and not key:
        return
    check_secret_key(key)


def _key_checked(run: Any, settings: Settings | None) -> Any:
    """``run`` (a lifespan), after the master key is checked: before anything starts."""

    @contextlib.asynccontextmanager
    async def checked(app: Any) -> AsyncIterator[Any]:
        require_secret_key(settings or Settings())
        async with run(app) as state:
            yield state

    return checked


def _check_key_at_start(app: FastAPI, *, optional: bool) -> None:
    """Wrap ``app``'s lifespan: once the host's has started the runtime, check its key."""
    host = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def checked(started: Any) -> AsyncIterator[Any]:
        async with host(started) as state:
            runtime = getattr(started.state, "beamish", None)
            require_secret_key(runtime.settings if isinstance(runtime, Application) else None,
                               optional=optional)
            yield state

    app.router.lifespan_context = checked


__all__ = ["api_router", "create_app", "install_api", "require_secret_key"]
