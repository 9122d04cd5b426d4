"""Every exception ``beamish.llm`` raises.

Provider SDK exceptions (openai, anthropic, httpx) never cross the public API: the provider
clients translate them into this tree, keeping the original as ``__cause__``. No message ever
contains an API key (keys are masked before they reach any string)::

    LLMError
    ├── ResolutionError              no configuration could be resolved for the request
    │   └── NoUsableProviderError    every layer was skipped and no provider kind is usable
    └── ProviderError                a provider call failed (after retries and fallbacks)
        ├── ProviderCallError        one call to one provider and model failed
        │   ├── UnauthorizedError        401/403: the API key is missing, wrong or lacks access
        │   ├── RateLimitedError         429: retried after backoff, honouring Retry-After
        │   ├── ProviderUnavailableError 5xx, refused or dropped connection: retried
        │   │   └── ProviderTimeoutError no answer within the resolved timeout: retried
        │   ├── BadRequestError          other 4xx (bad request, unknown model): not retried
        │   ├── ProviderNotConfiguredError  no usable provider of that kind or name
        │   └── StreamBrokenError        a stream broke after its first token
        └── FallbacksExhaustedError  every model of the fallback chain failed; names each try
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beamish.llm.providers.base import Attempt


class LLMError(Exception):
    """Base class of every error raised by ``beamish.llm``."""


# --- resolution ---------------------------------------------------------------------------


class ResolutionError(LLMError):
    """Configuration resolution failed; subclasses say how."""


class NoUsableProviderError(ResolutionError):
    """No layer of the hierarchy yields a usable provider and model.

    Attributes:
        user_id: the user resolved for (None for a call on nobody's behalf).
        task_type: the task type resolved for.
        warnings: why each layer was skipped, as ``ResolvedConfig.warnings`` would say.
    """

    def __init__(self, user_id: str | None, task_type: str, warnings: tuple[str, ...]) -> None:
        self.user_id = user_id
        self.task_type = task_type
        self.warnings = warnings
        who = "no user" if user_id is None else f"user {user_id!r}"
        skipped = "; ".join(warnings) or "no layer names a provider"
        super().__init__(
            f"no usable provider for task {task_type!r} ({who}): {skipped}. Enable a provider "
            f"in the registry, configure one in settings (llm.providers), or leave echo enabled")


# --- providers ----------------------------------------------------------------------------


class ProviderError(LLMError):
    """A provider call failed; subclasses say how."""


class ProviderCallError(ProviderError):
    """One call to one provider and model failed.

    Attributes:
        provider: the registry name of the provider called (``openai``, ``vllm-local``, ...).
        model: the model called.
        status_code: the HTTP status the provider answered with, or None if it never answered.
        retry_after: the seconds the provider asked to wait before retrying, if it said.
    """

    def __init__(self, message: str, *, provider: str, model: str,
                 status_code: int | None = None, retry_after: float | None = None) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(message)


class UnauthorizedError(ProviderCallError):
    """The provider refused the API key (401) or its access (403); check the key."""


class RateLimitedError(ProviderCallError):
    """The provider is rate limiting (429); retried after ``retry_after`` or a backoff."""


class ProviderUnavailableError(ProviderCallError):
    """The provider failed (5xx), refused the connection or dropped it; retried."""


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer within the resolved ``timeout_s``; retried."""


class BadRequestError(ProviderCallError):
    """The provider rejected the request (4xx other than 401/403/429); not retried."""


class ProviderNotConfiguredError(ProviderCallError):
    """No usable provider has that kind or name: no key, no registry row, or it is disabled."""


class StreamBrokenError(ProviderCallError):
    """A stream broke after its first token; the answer is incomplete and is not retried."""


class FallbacksExhaustedError(ProviderError):
    """Every model of the fallback chain failed; the message names each try and its error.

    Attributes:
        attempts: every try, in order (``beamish.llm.providers.Attempt``).
    """

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = tuple(attempts)
        tries = "; ".join(f"{a.provider}:{a.model}: {a.error}" for a in self.attempts)
        super().__init__(
            f"every model of the fallback chain failed ({len(self.attempts)} tries): {tries}. "
            "Check the providers' keys and status, or add fallback_models")
