"""SDK failures to ``beamish.llm.errors``, from the facts both SDKs expose; no I/O.

Each SDK adapter catches its own exceptions, reads the HTTP status, the body and the headers,
and asks this module for the beamish error: 401/403 unauthorized, 429 rate limited, 408 and
timeouts timed out, 5xx and connection failures unavailable, any other 4xx a bad request,
and an answer the SDK cannot parse unavailable too (a proxy's error page, a cut JSON body).
Messages name the provider and model, say what to do, and quote the upstream's words
(kept as ``detail`` too) scrubbed of the key, any fragment of it and anything else key-like
(``beamish.llm.scrub``), split across lines or not; they are for logs and operators. What
callers are told is the error's ``public_message``, which quotes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from beamish.llm.errors import (
    BadRequestError,
    ProviderCallError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    UnauthorizedError,
)
from beamish.llm.providers.keys import ApiKey
from beamish.llm.scrub import scrub

_MAX_DETAIL = 400

_ADVICE: Mapping[type[ProviderCallError], str] = {
    UnauthorizedError: "check the provider's API key and its access to the model",
    RateLimitedError: "retried with backoff; raise the provider's limits or add fallbacks",
    ProviderUnavailableError: "retried; check the provider's status and base URL",
    BadRequestError: "not retried; check the model name and the parameters",
}


def error_detail(body: object, fallback: str) -> str:
    """The human message in an error body (``{"error": {"message": ...}}``), else ``fallback``."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return fallback


def status_error(status: int, detail: str, *, provider: str, model: str,
                 retry_after: float | None = None, key: ApiKey | None = None,
                 ) -> ProviderCallError:
    """The beamish error for an HTTP error answer ``status`` with message ``detail``."""
    kind = _class_for_status(status)
    advice = _ADVICE[ProviderUnavailableError if kind is ProviderTimeoutError else kind]
    said = _clean(detail, key)
    message = f"{provider}:{model} answered HTTP {status}: {said} ({advice})"
    return kind(message, provider=provider, model=model, status_code=status,
                retry_after=retry_after, detail=said)


def connection_error(detail: str, *, provider: str, model: str, timed_out: bool,
                     timeout_s: float | None = None, key: ApiKey | None = None,
                     ) -> ProviderUnavailableError:
    """The beamish error for no answer: a timeout, or a refused or dropped connection."""
    if timed_out:
        limit = "" if timeout_s is None else f" within {timeout_s:g} s"
        said = _clean(detail, key)
        message = (f"{provider}:{model} did not answer{limit}: {said} (retried; "
                   "raise timeout_s for long answers, or check the provider's status)")
        return ProviderTimeoutError(message, provider=provider, model=model, detail=said)
    said = _clean(detail, key)
    message = (f"{provider}:{model} could not be reached: {said} "
               f"({_ADVICE[ProviderUnavailableError]})")
    return ProviderUnavailableError(message, provider=provider, model=model, detail=said)


def malformed_answer(error: ValueError, *, provider: str, model: str,
                     key: ApiKey | None = None) -> ProviderUnavailableError:
    """The beamish error for an answer that is not the API's format (bad JSON, wrong shape)."""
    said = _clean(f"{type(error).__name__}: {error}", key)
    message = (f"{provider}:{model} answered in a form its API does not define: {said} "
               "(retried; check that the base URL points at a server of this kind)")
    return ProviderUnavailableError(message, provider=provider, model=model, detail=said)


def _class_for_status(status: int) -> type[ProviderCallError]:
    if status in (401, 403):
        return UnauthorizedError
    if status == 429:
        return RateLimitedError
    if status == 408:
        return ProviderTimeoutError
    if status >= 500:
        return ProviderUnavailableError
    return BadRequestError


def _clean(detail: str, key: ApiKey | None) -> str:
    # Mask before joining the lines (a key split by a line break is masked whole, its break
    # included) and before clipping, so a clip can never leave a fragment of the key.
    text = " ".join((scrub if key is None else key.scrub)(detail).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
