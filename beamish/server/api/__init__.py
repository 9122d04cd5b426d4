"""The HTTP API: users' LLM config and usage, admin, sessions, OpenAI-compatible completions.

A standalone app, running its own runtime::

    from beamish.server.api import create_app
    app = create_app(Settings())              # uvicorn.run(app, host="127.0.0.1", port=4000)

Serving a runtime you run (what ``beamish serve`` does, so channels share it)::

    async with Application(settings) as rt:
        app = create_app(runtime=rt, auth=ApiAuth.tokens(settings))
        ...                                     # uvicorn.Server(...).serve()

In a host FastAPI app::

    app = FastAPI(lifespan=beamish.lifespan())
    install_api(app)                           # routes + error handlers

Routes (every one but ``/health`` and ``/ready`` needs ``Authorization: Bearer <token>``):

======================================================  =====================================
``GET|PUT|DELETE /api/users/{u}/llm-config``            default, configs, overrides (users)
``GET|PUT|DELETE /api/users/{u}/llm-config/providers/{p}``  one per-provider config
``GET|PUT|DELETE /api/users/{u}/llm-config/tasks/{t}``  one per-task override
``GET /api/users/{u}/usage``                            usage stats (window, filters, per day)
``GET /api/llm/config/preview``                         resolution with provenance
``GET /api/llm/models``                                 the model catalog
``GET|POST /api/admin/providers``, ``.../{n}/validate``  provider registry (admin)
``GET|PUT /api/admin/llm/global/{t}[?tier=]``           global and tier configs (admin)
``GET /api/admin/audit``, ``/usage/top``, ``/sessions``, ``/runtime``   introspection (admin)
``POST|GET /api/sessions``, ``GET|DELETE /api/sessions/{id}``  sessions
``POST /api/sessions/{id}/completions``                 session-scoped call (SSE if streamed)
``POST /v1/chat/completions``, ``GET /v1/models``       OpenAI-compatible
``POST /api/v1/llm_jobs``, ``.../{id}/cancel``           LLM jobs: enqueue, cancel
``GET /api/v1/llm_outputs[/{id}]``, ``GET|PUT .../feedback``  the caller's outputs, rated
``POST /api/v1/llm_outputs/{id}/rerun|regenerate``      a new job, linked to its parent
``GET /api/admin/llm_outputs/stats``                    feedback per template and model (admin)
``GET /health``                                         liveness (no auth)
``GET /ready``                                          readiness: runtime, store, stalls (no auth)
======================================================  =====================================

Modules: :mod:`.app` (building the app), :mod:`.deps` (runtime, auth), :mod:`.errors`
(error mapping), :mod:`.users`, :mod:`.admin`, :mod:`.sessions`, :mod:`.openai_compat`,
:mod:`.health`, :mod:`.jobs`, :mod:`.calls` (LLM calls and their streams), :mod:`.sse`,
:mod:`.catalog`, :mod:`.models`. The request log (one JSON line per LLM request) is
:mod:`beamish.request_log`.
"""

from beamish.request_log import LLMRequestLog
from beamish.server.api.app import api_router, create_app, install_api
from beamish.server.api.deps import ApiAuth
from beamish.server.api.errors import (
    ApiError,
    ConfigurationError,
    ErrorBody,
    ErrorDetail,
    ForbiddenError,
    InvalidRequestError,
    ResourceNotFoundError,
    install_error_handlers,
)
from beamish.server.api.sessions import implicit_session_id

__all__ = [
    "ApiAuth", "ApiError", "ConfigurationError", "ErrorBody", "ErrorDetail", "ForbiddenError",
    "InvalidRequestError", "LLMRequestLog", "ResourceNotFoundError", "api_router",
    "create_app", "implicit_session_id", "install_api", "install_error_handlers",
]
