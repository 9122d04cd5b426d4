"""The OpenAI-compatible ``POST /v1/embeddings``.

Point the official SDK at it as at chat completions (``openai_compat``)::

    client = openai.AsyncOpenAI(base_url="http://127.0.0.1:4000/v1", api_key=token)
    result = await client.embeddings.create(model="beamish", input=["a text", "another"])
    result.data[0].embedding                      # one vector per input, in order

**Models** are named as for chat completions (``ModelNames``): ``beamish``/``default`` (or
none) is the caller's configured model for the task type ``embeddings``; ``kind:model``,
``name/model`` or a listed model name one; anything else is a 404 ``model_not_found``. A
provider with no embeddings API (Anthropic) is a 400 with code ``provider_rejected``
saying so. The ``X-Beamish-Task-Type`` header names another task type.

**Input** is a string or a list of 1 to ``MAX_INPUTS`` strings, none empty; token arrays
(lists of integers) are refused with a 400, as beamish cannot know every provider's
tokenizer. ``encoding_format`` is ``float`` (default) or ``base64`` (little-endian float32,
as OpenAI sends and the SDK asks for by default); ``dimensions`` is passed to the model
(the echo provider's vectors have 256 unless it is set); ``user`` is accepted and ignored.

**The session and usage**: the call runs in the session ``X-Beamish-Session`` names, else the
caller's implicit one, exactly as chat completions do, and its usage — prompt tokens,
completion 0, task type ``embeddings`` — is recorded once under the ``X-Request-Id`` the
answer carries, whatever the outcome.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field

from beamish.application import Application, SessionEmbeddings
from beamish.auth import Principal
from beamish.llm.errors import FallbacksExhaustedError
from beamish.llm.hierarchy import ConfigRequest
from beamish.request_log import LLMRequestLog, Outcome, elapsed_ms, log_llm_request
from beamish.server.api.deps import AppDep, CurrentPrincipal
from beamish.server.api.errors import ERROR_RESPONSES, InvalidRequestError
from beamish.server.api.models import Out
from beamish.server.api.openai_compat import (
    Pair,
    SessionHeader,
    TaskHeader,
    caller_session,
    is_alias,
    model_names,
)
from beamish.store.models import new_request_id

router = APIRouter(prefix="/v1", tags=["openai"], responses=ERROR_RESPONSES)

MAX_INPUTS = 2048
"""The most texts one request may embed (OpenAI's own limit)."""

MAX_DIMENSIONS = 4096
"""The longest vector a request may ask for."""


class EmbeddingRequest(Out):
    """The body of ``POST /v1/embeddings``."""

    # OpenAI clients send fields beamish has no use for; they are accepted and ignored.
    model_config = ConfigDict(frozen=True, extra="ignore")

    model: str | None = Field(default=None, max_length=255)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=MAX_DIMENSIONS)
    user: str | None = Field(default=None, max_length=256)


class EmbeddingUsage(Out):
    """Tokens the inputs took."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingItem(Out):
    """OpenAI's ``embedding``: one input's vector (base64 of float32 if asked)."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingList(Out):
    """OpenAI's embeddings answer."""

    object: Literal["list"] = "list"
    data: tuple[EmbeddingItem, ...]
    model: str
    usage: EmbeddingUsage


def input_texts(request: EmbeddingRequest) -> tuple[str, ...]:
    """The request's texts; 400 for token arrays, no inputs, too many or empty ones."""
    given = request.input
    texts = [given] if isinstance(given, str) else given
    if not texts:
        raise InvalidRequestError("input is empty: send a string or a list of strings")
    if not all(isinstance(text, str) for text in texts):
        raise InvalidRequestError("input as token arrays is not supported: send the text "
                                  "as a string or a list of strings")
    if len(texts) > MAX_INPUTS:
        raise InvalidRequestError(f"input has {len(texts)} texts; at most {MAX_INPUTS} "
                                  "per request")
    strings = [text for text in texts if isinstance(text, str)]
    empty = [index for index, text in enumerate(strings) if not text]
    if empty:
        raise InvalidRequestError(f"input[{empty[0]}] is an empty string; every text needs "
                                  "at least one character")
    return tuple(strings)


def encode(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    """The vector as OpenAI sends it: floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def _options(pair: Pair) -> ConfigRequest | None:
    provider, model = pair
    if provider is None and model is None:
        return None
    return ConfigRequest.model_validate({"provider": provider, "model": model})


@router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)",
             response_model=EmbeddingList)
async def create_embeddings(body: EmbeddingRequest, caller: CurrentPrincipal, rt: AppDep,
                            response: Response, session: SessionHeader = None,
                            task_type: TaskHeader = "embeddings") -> EmbeddingList:
    """One vector per input, with the caller's configured embeddings model."""
    texts = input_texts(body)
    pair: Pair = (None, None) if is_alias(body.model) else (
        await model_names(rt)).pick(body.model)
    session_id = await caller_session(rt, caller, session)
    request_id = new_request_id()
    result = await _embed(rt, caller, session_id, texts, task_type, _options(pair),
                          body.dimensions, request_id)
    response.headers.update({"X-Request-Id": request_id, "X-Beamish-Session": session_id})
    vectors = result.embeddings
    return EmbeddingList(
        data=tuple(EmbeddingItem(index=index, embedding=encode(vector, body.encoding_format))
                   for index, vector in enumerate(vectors.vectors)),
        model=vectors.model,
        usage=EmbeddingUsage(prompt_tokens=vectors.usage.prompt_tokens,
                             total_tokens=vectors.usage.prompt_tokens))


async def _embed(rt: Application, caller: Principal, session_id: str, texts: tuple[str, ...],
                 task_type: str, options: ConfigRequest | None, dimensions: int | None,
                 request_id: str) -> SessionEmbeddings:
    """``rt.embed`` in the caller's session, with one request log line whatever happens."""
    started = time.monotonic()
    outcome: Outcome = "cancelled"
    error: BaseException | None = None
    result: SessionEmbeddings | None = None
    try:
        result = await rt.embed(session_id, texts, user_id=caller.user_id,
                                task_type=task_type, options=options, dimensions=dimensions,
                                request_id=request_id)
        outcome = "ok"
        return result
    except Exception as failed:
        outcome, error = "error", failed
        raise
    finally:
        _log(caller, session_id, task_type, request_id, started, outcome, result, error)


def _log(caller: Principal, session_id: str, task_type: str, request_id: str,
         started: float, outcome: Outcome, result: SessionEmbeddings | None,
         error: BaseException | None) -> None:
    provider: str | None = None
    model: str | None = None
    if result is not None:
        provider, model = result.embeddings.provider, result.embeddings.model
    elif isinstance(error, FallbacksExhaustedError) and error.attempts:
        provider, model = error.attempts[-1].provider, error.attempts[-1].model
    log_llm_request(LLMRequestLog(
        request_id=request_id, user_id=caller.user_id, session_id=session_id,
        endpoint="openai", stream=False, task_type=task_type, provider=provider, model=model,
        latency_ms=elapsed_ms(started),
        prompt_tokens=0 if result is None else result.embeddings.usage.prompt_tokens,
        completion_tokens=0, outcome=outcome,
        error=None if error is None else type(error).__name__))


__all__ = ["MAX_DIMENSIONS", "MAX_INPUTS", "EmbeddingList", "EmbeddingRequest", "encode",
           "input_texts", "router"]
