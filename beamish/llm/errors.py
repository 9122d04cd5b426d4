"""Every exception ``beamish.llm`` raises.

Provider SDK exceptions (openai, anthropic, httpx) never cross the public API: the provider
clients translate them into this tree, keeping the original as ``__cause__``. No message ever
contains an API key (keys are masked before they reach any string)::

    LLMError
    ├── ResolutionError              no configuration could be resolved for the request
    └── ProviderError                a provider call failed (after retries and fallbacks)
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class of every error raised by ``beamish.llm``."""


# --- resolution ---------------------------------------------------------------------------


class ResolutionError(LLMError):
    """No layer of the hierarchy yields a usable provider and model."""


# --- providers ----------------------------------------------------------------------------


class ProviderError(LLMError):
    """A provider call failed; subclasses say how."""
