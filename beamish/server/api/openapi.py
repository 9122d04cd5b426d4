"""What the OpenAPI document says each operation can answer, and an honest 405.

**Error responses.** The route modules declare 401/403/422 for every authenticated
operation (``ERROR_RESPONSES``). :func:`document_errors` adds, from the shape of each
operation, the other typed errors ``errors.describe`` can give it (each an ``ErrorBody``):

=========  ==================  ==================================================
status     type                documented on
=========  ==================  ==================================================
400        invalid_request     operations that take a body or query parameters
404        not_found           operations with a path parameter, and completions
                               (``COMPLETIONS``: chat completions and embeddings)
409        conflict            PUT and POST (a concurrent write, a name taken), and
                               every operation on one session (``SESSION_PATHS``: an
                               admin naming no user, the id open for several users)
413        request_too_large   operations that take a body
429        rate_limited        completions (the provider's limit, after retries)
502, 504   provider_*          completions (the provider failed or timed out)
503        overloaded          every authenticated operation (store or runtime down)
=========  ==================  ==================================================

It is a pure function of the document, so the rules are tested without a server;
``tests/server/api/test_schema_fuzz.py`` checks them against the running API.

**405.** Starlette answers a method a path does not serve with the ``Allow`` of the first
route whose path matched; a path served by several routes (GET, PUT and DELETE of
``/api/users/{u}/llm-config``) lists one. :func:`method_not_allowed` lists every method of
every route matching the path, and says so in the message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from beamish.server.api.errors import ErrorInfo, error_response

ERROR_SCHEMA: Final = {"$ref": "#/components/schemas/ErrorBody"}

#: Paths that call a provider: their failures are the provider's.
COMPLETIONS: Final = frozenset({"/v1/chat/completions", "/api/sessions/{session_id}/completions",
                                "/v1/embeddings"})

#: Paths of one session: an admin naming no user gets a 409 when several users have it open.
SESSION_PATHS: Final = "/api/sessions/{session_id}"

_KINDS: Final = {400: "invalid_request", 404: "not_found", 409: "conflict",
                 413: "request_too_large", 429: "rate_limited", 502: "provider_error",
                 503: "overloaded", 504: "provider_timeout"}


def statuses_of(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses one authenticated operation can answer, beyond 401/403/422."""
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    takes_input = has_body or any(p.get("in") == "query" for p in params)
    found = {503}
    if takes_input:
        found.add(400)
    if "{" in path or path in COMPLETIONS:
        found.add(404)
    if method in ("put", "post") or path.startswith(SESSION_PATHS):
        found.add(409)
    if has_body:
        found.add(413)
    if path in COMPLETIONS:
        found |= {400, 429, 502, 504}
    return sorted(found)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each authenticated operation's error responses added (a copy)."""
    schema = copy.deepcopy(schema)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.get("responses", {})
            if "401" not in responses:  # not an authenticated operation (/health)
                continue
            for status in statuses_of(path, method, operation):
                responses.setdefault(str(status), {
                    "description": _KINDS[status].replace("_", " "),
                    "content": {"application/json": {"schema": ERROR_SCHEMA}}})
    return schema


#: The methods asked about when listing what a path allows.
METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(routes: Iterable[BaseRoute], scope: dict[str, Any]) -> list[str]:
    """Every method some route fully matches at the scope's path, sorted.

    Asked of each route through ``matches``, method by method: included routers are
    routes of their own, whose inner routes are not public.
    """
    routes = list(routes)
    return [method for method in METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL
                   for route in routes)]


async def method_not_allowed(request: Request, error: Exception) -> JSONResponse:
    """405 with every allowed method in ``Allow`` and in the message."""
    allowed = allowed_methods(request.app.router.routes, dict(request.scope))
    if not allowed and isinstance(error, StarletteHTTPException) and error.headers:
        allowed = [m.strip() for m in error.headers.get("Allow", "").split(",") if m.strip()]
    listed = ", ".join(allowed)
    return error_response(ErrorInfo(
        405, "method_not_allowed",
        f"{request.method} is not allowed on {request.url.path}; use {listed}",
        {"Allow": listed}))


def install_openapi(app: FastAPI) -> None:
    """Document the error responses in ``app``'s OpenAPI, and answer 405 honestly."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(405, method_not_allowed)


__all__ = ["allowed_methods", "document_errors", "install_openapi", "method_not_allowed",
           "statuses_of"]
