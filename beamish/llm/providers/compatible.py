"""What both clients of the OpenAI-compatible API agree on: the SDK's and the lean wire one.

``UNUSED_KEY`` is the key sent to keyless servers; ``MODEL_LIST`` names the "model" of
errors while listing models; ``context_window`` reads a model entry's context window from
the fields compatible servers add to ``GET /v1/models`` (OpenAI says none; vLLM's
``max_model_len``, LM Studio's ``max_context_length``, ``context_length``,
``context_window``): the first one found is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNUSED_KEY = "unused"
"""Sent to keyless servers: the SDK insists on a key, and Ollama and vLLM ignore it."""

MODEL_LIST = "(model list)"
"""The 'model' named in errors of ``list_models``."""

CONTEXT_FIELDS = ("max_model_len", "context_length", "max_context_length", "context_window")
"""The fields of a model entry that may give its context window, in the order read."""


def context_window(entry: Mapping[str, Any] | None) -> int | None:
    """The context window a model entry gives, or None."""
    for field in CONTEXT_FIELDS:
        value = (entry or {}).get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
