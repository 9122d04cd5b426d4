"""The HTTP API's own exceptions, and how every beamish error becomes a typed JSON error.

Every error answer has one shape, the OpenAI one (so the official SDKs read our messages)::

    {"error": {"type": "not_found", "message": "session 'abc' is not open ...",
               "code": null, "details": null}}

``code`` is set where a finer kind helps a client (``provider_unavailable``,
``provider_rejected``, ``model_not_found``) and left out otherwise. Under ``/v1`` the body
always has OpenAI's four fields, ``message``, ``type``, ``param`` and ``code`` (null when
unset), as OpenAI's own errors do.

**Provider failures say what happened, not what the provider said.** Their message is the
error's ``public_message``: the provider and model named once, the kind of failure, what to
do. The upstream's own words (which may echo parts of a key, or of other users' requests)
go to the log at WARNING, scrubbed, from ``beamish.llm`` — and to admins through
``POST /api/admin/providers/{name}/validate``.

The API's own exceptions::

    ApiError                    raised by the endpoints themselves
    ├── ForbiddenError          403: the caller's token does not reach that user or needs admin
    ├── InvalidRequestError     400: the request is well-formed JSON but cannot be served
    ├── ResourceNotFoundError   404: nothing of that name
    │   └── ModelNotFoundError  404: ``/v1`` does not serve that model (code model_not_found)
    └── ConfigurationError      500: the server is missing something it needs (a key)

``describe(error)`` is the whole mapping, sans-I/O (exception in, ``ErrorInfo`` out):

======================================  ======  ====================  ===================
exception                               status  type                  headers
======================================  ======  ====================  ===================
``AuthError`` (missing/bad token)       401     authentication_error  WWW-Authenticate
``ForbiddenError``, ``SessionOwnerError`` 403   permission_denied
store ``NotFoundError``, session gone   404     not_found
store ``ConflictError``                 409     conflict
``SessionAmbiguousError``               409     conflict
request validation                      422     validation_error
``InvalidRequestError``                 400     invalid_request
``ModelNotFoundError``                  404     not_found             (code model_not_found)
provider ``BadRequestError``            400     invalid_request       (code provider_rejected)
provider rate limit (last try)          429     rate_limited          Retry-After
provider timeout (last try)             504     provider_timeout      (code provider_unavailable)
other provider failures                 502     provider_error        (code: the error's)
``StoreUnavailableError`` (store down)  503     store_unavailable     Retry-After
``UsageBackpressureError``,             503     overloaded            Retry-After
session limit, runtime not running
``NoUsableProviderError``               503     no_usable_provider
``SecretKeyError``, ``SigningKeyError``  500     configuration_error
``TemplateNotFoundError``               404     not_found
``TemplateSyntaxError``,                422     validation_error      (param: the part)
``TemplateSchemaError``
``TemplateVariablesError``              422     validation_error      (details: each one)
``TemplateRenderError``                 422     template_render_error (code: the problem)
``JobNotFoundError``                    404     not_found
``OutputForbiddenError``                403     permission_denied
``MissingPromptError``                  422     validation_error      (param: template)
``InvalidJobError`` naming a param      422     validation_error      (param: it)
``InvalidJobError`` (other)             400     invalid_request
``OutputNotCompletedError``             409     conflict
``JobLimitError``                       429     rate_limited          (code job_limit)
``WaitLimitError``                      429     rate_limited          (code wait_limit)
``JobsNotRunningError``                 503     overloaded            Retry-After
anything else                           500     internal_error        (message hidden)
======================================  ======  ====================  ===================

Messages come from the exceptions, which never hold a token or an API key (the store, LLM
and server packages guarantee it). Validation errors list each problem as
``location: message`` and never echo the submitted values, which may hold an API key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from beamish.auth import AuthError, BeamishAuthError
from beamish.jobs.errors import (
    InvalidJobError,
    JobError,
    JobLimitError,
    JobNotFoundError,
    JobsNotRunningError,
    MissingPromptError,
    OutputForbiddenError,
    OutputNotCompletedError,
    WaitLimitError,
)
from beamish.llm.errors import (
    BadRequestError,
    FallbacksExhaustedError,
    LLMError,
    NoUsableProviderError,
    ProviderCallError,
    ProviderTimeoutError,
    RateLimitedError,
)
from beamish.sessions.errors import (
    RuntimeNotRunningError,
    SessionAmbiguousError,
    SessionError,
    SessionLimitError,
    SessionNotFoundError,
    SessionOwnerError,
)
from beamish.store.errors import (
    ConflictError,
    NotFoundError,
    RecorderClosedError,
    SecretKeyError,
    StoreError,
    StoreUnavailableError,
    UsageBackpressureError,
)
from beamish.templates.errors import (
    TemplateError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSchemaError,
    TemplateSyntaxError,
    TemplateVariablesError,
)

log = logging.getLogger("beamish.server.api")

RETRY_AFTER_S = 1
"""What ``Retry-After`` says when beamish itself is overloaded (seconds)."""

_STATUS_TYPES: Mapping[int, str] = {
    400: "invalid_request", 401: "authentication_error", 403: "permission_denied",
    404: "not_found", 405: "method_not_allowed", 409: "conflict", 413: "request_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited",
}


# --- the API's own exceptions ------------------------------------------------------------


class ApiError(Exception):
    """Base class of the errors the endpoints raise themselves."""


class ForbiddenError(ApiError, PermissionError):
    """The caller is authenticated but may not do this."""


class InvalidRequestError(ApiError, ValueError):
    """The request is valid JSON of the right shape, but cannot be served as asked."""


class ResourceNotFoundError(ApiError, LookupError):
    """Nothing of that name exists."""


class ModelNotFoundError(ResourceNotFoundError):
    """The request names a model no usable provider serves (``code`` ``model_not_found``)."""


class ConfigurationError(ApiError):
    """The server lacks something it needs to serve this (a key, a setting)."""


# --- the wire shape ------------------------------------------------------------------------


class ValidationProblem(BaseModel):
    """One thing wrong with a request: where, and what."""

    model_config = ConfigDict(frozen=True)

    loc: tuple[str | int, ...]
    msg: str
    type: str


class ErrorDetail(BaseModel):
    """What went wrong, typed (``type``) and in words (``message``)."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    param: str | None = None
    code: str | None = None
    details: tuple[ValidationProblem, ...] | None = None


class ErrorBody(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(frozen=True)

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": kind.replace("_", " ")}
    for status, kind in ((401, "authentication_error"), (403, "permission_denied"),
                         (422, "validation_error"))
}
"""The error answers every authenticated endpoint may give, for OpenAPI."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error as the API answers it."""

    status: int
    type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    details: tuple[ValidationProblem, ...] | None = None
    code: str | None = None
    param: str | None = None

    def body(self) -> ErrorBody:
        """The JSON body of the answer."""
        return ErrorBody(error=ErrorDetail(type=self.type, message=self.message,
                                           param=self.param, code=self.code,
                                           details=self.details))

    def openai_body(self) -> dict[str, Any]:
        """The body in OpenAI's shape: ``message``, ``type``, ``param`` and ``code`` always."""
        body = self.body().model_dump(mode="json", exclude_none=True)
        body["error"].setdefault("param", None)
        body["error"].setdefault("code", None)
        return body


# --- the mapping (sans-I/O) ----------------------------------------------------------------


def describe(error: BaseException) -> ErrorInfo:
    """How the API answers ``error``; see the module docstring's table."""
    if isinstance(error, RequestValidationError | ValidationError):
        return validation_info(error.errors())
    if isinstance(error, ApiError):
        return _api_info(error)
    if isinstance(error, BeamishAuthError):
        return _server_info(error)
    if isinstance(error, SessionError):
        return _session_info(error)
    if isinstance(error, StoreError):
        return _store_info(error)
    if isinstance(error, LLMError):
        return _llm_info(error)
    if isinstance(error, TemplateError):
        return _template_info(error)
    if isinstance(error, JobError):
        return _job_info(error)
    if isinstance(error, StarletteHTTPException):
        kind = _STATUS_TYPES.get(error.status_code, "http_error")
        return ErrorInfo(error.status_code, kind, str(error.detail),
                         dict(error.headers or {}))
    return ErrorInfo(500, "internal_error",
                     "the server failed to answer this request; the error is in its log")


def validation_info(errors: Sequence[Any]) -> ErrorInfo:
    """A 422 listing each problem (``body.messages.0.role: ...``), never the values sent."""
    problems = tuple(ValidationProblem(loc=tuple(e.get("loc", ())), msg=str(e.get("msg", "")),
                                       type=str(e.get("type", "invalid")))
                     for e in errors)
    said = "; ".join(f"{'.'.join(str(p) for p in problem.loc) or 'request'}: {problem.msg}"
                     for problem in problems)
    return ErrorInfo(422, "validation_error", f"the request is not valid: {said}",
                     details=problems)


def _api_info(error: ApiError) -> ErrorInfo:
    if isinstance(error, ForbiddenError):
        return ErrorInfo(403, "permission_denied", str(error))
    if isinstance(error, ModelNotFoundError):
        return ErrorInfo(404, "not_found", str(error), code="model_not_found", param="model")
    if isinstance(error, ResourceNotFoundError):
        return ErrorInfo(404, "not_found", str(error))
    if isinstance(error, ConfigurationError):
        return ErrorInfo(500, "configuration_error", str(error))
    return ErrorInfo(400, "invalid_request", str(error))


def _server_info(error: BeamishAuthError) -> ErrorInfo:
    if isinstance(error, AuthError):
        return ErrorInfo(401, "authentication_error", str(error),
                         {"WWW-Authenticate": 'Bearer realm="beamish"'})
    # SigningKeyError, DevModeError: the server was started without what it needs.
    return ErrorInfo(500, "configuration_error", str(error))


def _session_info(error: SessionError) -> ErrorInfo:
    if isinstance(error, SessionNotFoundError):
        return ErrorInfo(404, "not_found", str(error))
    if isinstance(error, SessionOwnerError):
        return ErrorInfo(403, "permission_denied", str(error))
    if isinstance(error, SessionAmbiguousError):
        return ErrorInfo(409, "conflict", str(error))
    if isinstance(error, SessionLimitError | RuntimeNotRunningError):
        return _overloaded(str(error) or "the beamish runtime is not running")
    return ErrorInfo(500, "internal_error", str(error))


def _store_info(error: StoreError) -> ErrorInfo:
    if isinstance(error, NotFoundError):
        return ErrorInfo(404, "not_found", str(error))
    if isinstance(error, ConflictError):
        return ErrorInfo(409, "conflict", str(error))
    if isinstance(error, StoreUnavailableError):
        return ErrorInfo(503, "store_unavailable",
                         f"beamish cannot reach its database right now ({error}); retry after "
                         f"{RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(error, UsageBackpressureError | RecorderClosedError):
        return _overloaded(f"beamish cannot record usage or reach its database right now "
                           f"({error}); retry after {RETRY_AFTER_S} s")
    if isinstance(error, SecretKeyError):
        return ErrorInfo(500, "configuration_error", str(error))
    return ErrorInfo(500, "internal_error", str(error))


def _llm_info(error: LLMError) -> ErrorInfo:
    if isinstance(error, NoUsableProviderError):
        return ErrorInfo(503, "no_usable_provider", str(error))
    # The public message only: str(error) quotes the upstream (see the module docstring).
    said, code = error.public_message, error.code
    last = error.__cause__ if isinstance(error, FallbacksExhaustedError) else error
    if isinstance(last, RateLimitedError):
        wait = last.retry_after if last.retry_after is not None else RETRY_AFTER_S
        return ErrorInfo(429, "rate_limited", said,
                         {"Retry-After": str(max(1, round(wait)))}, code=code)
    if isinstance(last, ProviderTimeoutError):
        return ErrorInfo(504, "provider_timeout", said, code=code)
    if isinstance(last, BadRequestError):
        return ErrorInfo(400, "invalid_request", said, code=code)
    if isinstance(last, ProviderCallError) or isinstance(error, FallbacksExhaustedError):
        return ErrorInfo(502, "provider_error", said, code=code)
    return ErrorInfo(500, "internal_error",
                     "the server failed to answer this request; the error is in its log")


def _template_info(error: TemplateError) -> ErrorInfo:
    if isinstance(error, TemplateNotFoundError):
        return ErrorInfo(404, "not_found", str(error))
    if isinstance(error, TemplateSyntaxError):
        return ErrorInfo(422, "validation_error", str(error), param=error.part)
    if isinstance(error, TemplateSchemaError):
        return ErrorInfo(422, "validation_error", str(error), param="variables_schema")
    if isinstance(error, TemplateVariablesError):
        problems = tuple(ValidationProblem(loc=("body", "variables"), msg=problem,
                                           type="template_variables")
                         for problem in error.problems)
        return ErrorInfo(422, "validation_error", str(error), details=problems,
                         param="variables")
    if isinstance(error, TemplateRenderError):
        return ErrorInfo(422, "template_render_error", str(error), code=error.problem)
    return ErrorInfo(500, "internal_error", str(error))


def _job_info(error: JobError) -> ErrorInfo:
    if isinstance(error, JobNotFoundError):
        return ErrorInfo(404, "not_found", str(error))
    if isinstance(error, OutputForbiddenError):
        return ErrorInfo(403, "permission_denied", str(error))
    if isinstance(error, MissingPromptError):
        return ErrorInfo(422, "validation_error", str(error), param="template")
    if isinstance(error, InvalidJobError):
        if error.param is not None:
            return ErrorInfo(422, "validation_error", str(error), param=error.param)
        return ErrorInfo(400, "invalid_request", str(error))
    if isinstance(error, OutputNotCompletedError):
        return ErrorInfo(409, "conflict", str(error))
    if isinstance(error, JobLimitError):
        return ErrorInfo(429, "rate_limited", str(error), code="job_limit")
    if isinstance(error, WaitLimitError):
        return ErrorInfo(429, "rate_limited", str(error), code="wait_limit")
    if isinstance(error, JobsNotRunningError):
        return _overloaded(str(error))
    return ErrorInfo(500, "internal_error", str(error))


def _overloaded(message: str) -> ErrorInfo:
    return ErrorInfo(503, "overloaded", message, {"Retry-After": str(RETRY_AFTER_S)})


# --- the handlers ----------------------------------------------------------------------------


def error_response(info: ErrorInfo, *, openai: bool = False) -> JSONResponse:
    """The JSON answer for ``info``; in OpenAI's exact shape if ``openai`` (under ``/v1``)."""
    body = (info.openai_body() if openai
            else info.body().model_dump(mode="json", exclude_none=True))
    return JSONResponse(body, status_code=info.status, headers=dict(info.headers))


def is_openai_path(path: str) -> bool:
    """Whether ``path`` (without the app's root path) is under the OpenAI-compatible ``/v1``."""
    return path == "/v1" or path.startswith("/v1/")


async def handle_error(request: Request, error: Exception) -> JSONResponse:
    """The exception handler of every error class ``describe`` knows."""
    info = describe(error)
    if info.status >= 500 and info.type == "internal_error":
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return error_response(info, openai=is_openai_path(path))


HANDLED: tuple[type[Exception], ...] = (
    RequestValidationError, ValidationError, StarletteHTTPException, ApiError,
    BeamishAuthError, SessionError, StoreError, LLMError, TemplateError, JobError,
)
"""The exception classes the API answers with a typed error body."""


def install_error_handlers(app: FastAPI) -> None:
    """Answer every beamish error (and validation, 404/405) with a typed ``ErrorBody``."""
    for kind in HANDLED:
        app.add_exception_handler(kind, handle_error)


__all__ = [
    "ERROR_RESPONSES", "HANDLED", "RETRY_AFTER_S", "ApiError", "ConfigurationError",
    "ErrorBody", "ErrorDetail", "ErrorInfo", "ForbiddenError", "InvalidRequestError",
    "ModelNotFoundError", "ResourceNotFoundError", "ValidationProblem", "describe",
    "error_response", "handle_error", "install_error_handlers", "is_openai_path", "validation_info",
]
