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

**Two faces.** ``str(error)`` is for operators and developers: it quotes the upstream's own
words (``detail``), scrubbed of anything key-like (``beamish.llm.scrub``) — logs show it.
``public_message`` is for the people calling through beamish: short, typed by ``code``, and
naming the provider and model once, with none of the upstream's text (which may echo what
it was sent). ``code`` is one of:

* ``provider_unavailable`` — timeouts, refused or dropped connections, 5xx, 429, a broken
  stream, a provider that is not configured, and fallback chains whose last try was one;
* ``provider_rejected`` — the upstream refused the request with a 4xx: a bad key (401/403),
  a bad request or unknown model (other 4xx);
* ``no_usable_provider`` — resolution found nothing to call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beamish.llm.providers.base import Attempt


PROVIDER_UNAVAILABLE = "provider_unavailable"
PROVIDER_REJECTED = "provider_rejected"


class LLMError(Exception):
    """Base class of every error raised by ``beamish.llm``.

    Attributes:
        code: what kind of failure it is, for callers that answer people (see above).
    """

    code: str = PROVIDER_UNAVAILABLE

    @property
    def public_message(self) -> str:
        """What a caller who is not an operator may be told (no upstream text)."""
        return str(self)


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

    code = "no_usable_provider"

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
        detail: the provider's own words about the failure, scrubbed ("" if none).
    """

    _SAYS = "is unavailable; try again later"

    def __init__(self, message: str, *, provider: str, model: str,
                 status_code: int | None = None, retry_after: float | None = None,
                 detail: str = "", public: str | None = None) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.detail = detail
        self._public = public
        super().__init__(message)

    @property
    def public_message(self) -> str:
        """``<provider>:<model>`` once, what happened in beamish's words, what to do."""
        if self._public is not None:
            return self._public
        status = "" if self.status_code is None else f" (HTTP {self.status_code})"
        return f"{self.provider}:{self.model}{status} {self._SAYS}"


class UnauthorizedError(ProviderCallError):
    """The provider refused the API key (401) or its access (403); check the key."""

    code = PROVIDER_REJECTED
    _SAYS = ("rejected beamish's credentials; an administrator can check the provider's API "
             "key")


class RateLimitedError(ProviderCallError):
    """The provider is rate limiting (429); retried after ``retry_after`` or a backoff."""

    _SAYS = "is rate limiting; try again later"


class ProviderUnavailableError(ProviderCallError):
    """The provider failed (5xx), refused the connection or dropped it; retried."""


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer within the resolved ``timeout_s``; retried."""

    _SAYS = "did not answer in time; try again later"


class BadRequestError(ProviderCallError):
    """The provider rejected the request (4xx other than 401/403/429); not retried."""

    code = PROVIDER_REJECTED
    _SAYS = "rejected the request; check the model name and the parameters"


class ProviderNotConfiguredError(ProviderCallError):
    """No usable provider has that kind or name: no key, no registry row, or it is disabled.

    Its message is beamish's own (no upstream text), so it is also its public message.
    """

    @property
    def public_message(self) -> str:
        """The message: why beamish cannot use the provider."""
        return str(self)


class StreamBrokenError(ProviderCallError):
    """A stream broke after its first token; the answer is incomplete and is not retried."""


class FallbacksExhaustedError(ProviderError):
    """Every model of the fallback chain failed; the message names each try and its error.

    Attributes:
        attempts: every try, in order (``beamish.llm.providers.Attempt``).
    """

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = tuple(attempts)
        tries = "; ".join(_tries(self.attempts))
        super().__init__(
            f"every model of the fallback chain failed ({len(self.attempts)} tries): {tries}. "
            "Check the providers' keys and status, or add fallback_models")

    @property
    def last(self) -> ProviderCallError | None:
        """The failure of the last try (``__cause__``), if it was a provider call's."""
        cause = self.__cause__
        return cause if isinstance(cause, ProviderCallError) else None

    @property
    def code(self) -> str:  # type: ignore[override]  # the last try's kind
        """The last try's ``code``."""
        last = self.last
        return PROVIDER_UNAVAILABLE if last is None else last.code

    @property
    def public_message(self) -> str:
        """The last try's public message; with fallbacks, each model tried named once."""
        last = self.last
        said = "no model answered" if last is None else last.public_message
        links = list(dict.fromkeys(f"{a.provider}:{a.model}" for a in self.attempts))
        if len(links) <= 1:
            return said
        return f"every model failed ({', '.join(links)}); the last: {said}"


def _tries(attempts: Sequence[Attempt]) -> list[str]:
    # Retries of one model usually fail alike: say each distinct failure once, with a count.
    said: dict[tuple[str, str, str | None], int] = {}
    for a in attempts:
        said[(a.provider, a.model, a.error)] = said.get((a.provider, a.model, a.error), 0) + 1
    return [f"{provider}:{model}: {error}" + (f" ({n} times)" if n > 1 else "")
            for (provider, model, error), n in said.items()]
