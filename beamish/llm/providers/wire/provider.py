"""``OpenAIWireProvider``: the OpenAI-compatible API spoken directly, without the SDK.

The same calls, answers and errors as ``OpenAIProvider`` for the kinds ``ollama``, ``tgi`` and
``openai_compatible``: bodies are built once with ``orjson`` (``max_tokens``, streams with
``stream_options.include_usage``), answers read with ``orjson`` and checked field by field as
the SDK adapter checks them, and each failure becomes the error the SDK adapter gives for it
(``beamish.llm.providers.failures``); the mapping is ``_failure``'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from beamish.llm.errors import ProviderCallError
from beamish.llm.providers.base import (
    VALIDATE_TIMEOUT_S,
    ChatRequest,
    Completion,
    EmbeddingRequest,
    Embeddings,
    LLMProvider,
    ProviderChunk,
    Usage,
    discovered,
)
from beamish.llm.providers.compatible import MODEL_LIST, UNUSED_KEY, context_window
from beamish.llm.providers.failures import (
    connection_error,
    error_detail,
    malformed_answer,
    status_error,
)
from beamish.llm.providers.keys import ApiKey, safe_cause
from beamish.llm.providers.retry import parse_retry_after
from beamish.llm.providers.wire.errors import (
    StreamErrorEvent,
    WireError,
    WireStatusError,
    WireTimeoutError,
)
from beamish.llm.providers.wire.http1 import Connection, HTTPClient
from beamish.llm.providers.wire.sse import SSEDecoder
from beamish.store.models import LLMParameters, Provider, ProviderModel

COMPATIBLE_KINDS: frozenset[Provider] = frozenset({"ollama", "tgi", "openai_compatible"})
"""The provider kinds this client speaks for."""

DRAIN_S = 0.1
"""How long a stream past ``[DONE]`` may take to end, so its connection is kept (the SDK's)."""

_STREAM_OPTIONS = {"include_usage": True}


class OpenAIWireProvider(LLMProvider):
    """A provider speaking the OpenAI-compatible chat-completions API over ``HTTPClient``."""

    def __init__(self, name: str, *, base_url: str, api_key: ApiKey | None,
                 kind: Provider = "openai_compatible") -> None:
        """Talk to ``base_url`` (ending in ``/v1``) with ``api_key`` (None for keyless servers).

        Raises:
            ValueError: ``kind`` is not a compatible kind, ``base_url`` is not an http(s) URL,
                or the key cannot go in a header (a line break, a character beyond Latin-1).
        """
        if kind not in COMPATIBLE_KINDS:
            raise ValueError(f"the wire client speaks for the kinds "
                             f"{', '.join(sorted(COMPATIBLE_KINDS))}, not {kind!r}")
        super().__init__(name, kind)
        self._key = api_key
        self._http = HTTPClient(base_url)
        secret = api_key.reveal() if api_key is not None else UNUSED_KEY
        if not secret.isprintable():
            raise ValueError(f"the API key of provider {name!r} holds a character a header "
                             "cannot carry")
        try:
            shared = (f"Host: {self._http.host_header}\r\nAuthorization: Bearer {secret}\r\n"
                      "User-Agent: beamish\r\nAccept: application/json\r\n"
                      "Accept-Encoding: identity\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"the API key of provider {name!r} holds a character a header "
                             "cannot carry") from None
        json_post = b"Content-Type: application/json\r\nContent-Length: "
        self._chat = _line("POST", self._http.path("/chat/completions")) + shared + json_post
        self._embeddings = _line("POST", self._http.path("/embeddings")) + shared + json_post
        self._models = _line("GET", self._http.path("/models")) + shared + b"\r\n"

    async def complete(self, request: ChatRequest) -> Completion:
        """One chat completion."""
        body = orjson.dumps(_chat_body(request, stream=False))
        try:
            answer = await self._fetch(_post(self._chat, body), request.timeout_s)
            choice = _first_choice(answer)
            text = _content(choice.get("message") if choice is not None else None,
                            required=choice is not None)
            finish, usage = _finish_reason(choice), _usage(answer)
        except (WireError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        return Completion(
            text=text, usage=usage or Usage(), provider=self.kind, provider_name=self.name,
            model=request.model, finish_reason=finish)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """One streamed chat completion, ending with its usage chunk."""
        timeout_s = request.timeout_s
        payload = _post(self._chat, orjson.dumps(_chat_body(request, stream=True)))
        try:
            connection = await self._open(payload, timeout_s, streaming=True)
        except (WireError, ValueError) as error:
            raise self._failure(error, request.model, timeout_s) from safe_cause(
                error, self._key)
        finished = False
        try:
            decoder = SSEDecoder()
            while not finished:
                piece = await connection.next_piece(timeout_s)
                for _, data in decoder.feed(piece) if piece else decoder.end():
                    if data.startswith(b"[DONE]"):
                        finished = True
                        break
                    chunk = _chunk(_stream_payload(data))
                    if chunk is not None:
                        yield chunk
                if not piece:
                    break
        except (WireError, ValueError) as error:
            raise self._failure(error, request.model, timeout_s) from safe_cause(
                error, self._key)
        finally:
            try:
                if finished:
                    await connection.finish(min(DRAIN_S, timeout_s))
            finally:
                self._http.release(connection)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """One embeddings call: a float vector per input, in the inputs' order."""
        fields: dict[str, Any] = {"model": request.model, "input": list(request.inputs),
                                  "encoding_format": "float"}
        if request.dimensions is not None:
            fields["dimensions"] = request.dimensions
        try:
            answer = await self._fetch(_post(self._embeddings, orjson.dumps(fields)),
                                       request.timeout_s)
            vectors = _vectors(answer)
            if len(vectors) != len(request.inputs):
                raise ValueError(f"{len(vectors)} vectors for {len(request.inputs)} inputs")
            prompt_tokens = _embedding_tokens(answer)
        except (WireError, ValueError) as error:
            raise self._failure(error, request.model, request.timeout_s) from safe_cause(
                error, self._key)
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=prompt_tokens),
                          provider=self.kind, provider_name=self.name, model=request.model)

    async def list_models(self, *, timeout_s: float = VALIDATE_TIMEOUT_S) -> list[ProviderModel]:
        """The models ``GET /v1/models`` lists."""
        try:
            answer = await self._fetch(self._models, timeout_s)
            entries = _model_entries(answer)
        except (WireError, ValueError) as error:
            raise self._failure(error, MODEL_LIST, timeout_s) from safe_cause(error, self._key)
        return [discovered(self.name, entry["id"], context_window(entry)) for entry in entries]

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their call ends."""
        await self._http.aclose()

    async def _open(self, payload: bytes, timeout_s: float, *, streaming: bool) -> Connection:
        """A connection whose answer's head says 2xx; any other status is a WireStatusError."""
        connection = await self._http.open(payload, timeout_s, streaming=streaming)
        if 200 <= connection.status < 300:
            return connection
        try:
            raw = await connection.read(timeout_s)
        finally:
            self._http.release(connection)
        raise _status_failure(connection.status, raw, connection.headers())

    async def _fetch(self, payload: bytes, timeout_s: float) -> Any:
        """The JSON of a 2xx answer to ``payload``."""
        connection = await self._open(payload, timeout_s, streaming=False)
        try:
            raw = await connection.read(timeout_s)
        finally:
            self._http.release(connection)
        return orjson.loads(raw)

    def _failure(self, error: WireError | ValueError, model: str, timeout_s: float,
                 ) -> ProviderCallError:
        if isinstance(error, WireStatusError):
            return status_error(
                error.status, error_detail(error.body, error.fallback), provider=self.name,
                model=model, retry_after=parse_retry_after(error.headers), key=self._key)
        if isinstance(error, WireTimeoutError):
            return connection_error(f"Request timed out. ({error})", provider=self.name,
                                    model=model, timed_out=True, timeout_s=timeout_s,
                                    key=self._key)
        if isinstance(error, ValueError):  # not JSON, not its shape, not HTTP, too long
            return malformed_answer(error, provider=self.name, model=model, key=self._key)
        # Refused, reset or cut connections, and the API's in-stream error chunk.
        return connection_error(str(error), provider=self.name, model=model, timed_out=False,
                                timeout_s=timeout_s, key=self._key)


def _line(method: str, target: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\n".encode("latin-1")


def _post(head: bytes, body: bytes) -> bytes:
    return b"%b%d\r\n\r\n%b" % (head, len(body), body)


def _chat_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages]}
    if stream:
        body["stream"] = True
        body["stream_options"] = _STREAM_OPTIONS
    parameters: LLMParameters = request.parameters
    if parameters.temperature is not None:
        body["temperature"] = parameters.temperature
    if parameters.top_p is not None:
        body["top_p"] = parameters.top_p
    if parameters.max_tokens is not None:
        body["max_tokens"] = parameters.max_tokens  # what compatible servers know
    return body


def _status_failure(status: int, raw: bytes, headers: dict[str, str]) -> WireStatusError:
    # Worded as the SDK words it (``Error code: 429 - {...}``), for the same error messages.
    text = raw.decode("utf-8", "replace").strip()
    try:
        body: object = orjson.loads(text)
    except orjson.JSONDecodeError:
        return WireStatusError(status, text, text or f"Error code: {status}", headers)
    return WireStatusError(status, body, f"Error code: {status} - {body}", headers)


def _stream_payload(data: bytes) -> Any:
    payload = orjson.loads(data)
    if isinstance(payload, dict) and payload.get("error"):
        error = payload["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise StreamErrorEvent(message)
    return payload


def _chunk(payload: Any) -> ProviderChunk | None:
    choice = _first_choice(payload)
    text = _content(choice.get("delta") if choice is not None else None, required=False)
    finish, usage = _finish_reason(choice), _usage(payload)
    if not text and finish is None and usage is None:
        return None
    return ProviderChunk(text, usage, finish)


# The same checks as ``openai.py``'s of the SDK's objects, on the JSON itself: a server that
# answers JSON of another shape is a malformed answer (ValueError), never a crash.


def _first_choice(answer: Any) -> dict[str, Any] | None:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list):
        raise ValueError("the answer has no list of choices")
    if not choices:
        return None
    if not isinstance(choices[0], dict):
        raise ValueError("the answer's choice is not an object")
    return choices[0]


def _content(part: Any, *, required: bool) -> str:
    if part is None and not required:
        return ""
    if not isinstance(part, dict):
        raise ValueError("the answer's choice has no message")
    content = part.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("the answer's content is not text")
    return content or ""


def _finish_reason(choice: dict[str, Any] | None) -> str | None:
    reason = choice.get("finish_reason") if choice is not None else None
    if reason is not None and not isinstance(reason, str):
        raise ValueError("the answer's finish_reason is not text")
    return reason


def _usage(answer: dict[str, Any]) -> Usage | None:
    usage = answer.get("usage")
    if usage is None:
        return None
    prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not (type(prompt) is int and type(completion) is int and prompt >= 0
            and completion >= 0):
        raise ValueError("the answer's usage is not two counts of tokens")
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _vectors(answer: Any) -> tuple[tuple[float, ...], ...]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not all(
            isinstance(item, dict) and type(item.get("index")) is int
            and isinstance(item.get("embedding"), list) for item in data):
        raise ValueError("the answer has no list of indexed embeddings")
    vectors = []
    for item in sorted(data, key=lambda item: item["index"]):
        vector = item["embedding"]
        if not all(type(x) is float or type(x) is int for x in vector):
            raise ValueError("an embedding is not a list of numbers")
        vectors.append(tuple(vector))
    return tuple(vectors)


def _embedding_tokens(answer: dict[str, Any]) -> int:
    usage = answer.get("usage")
    if usage is None:
        return 0
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if type(tokens) is not int or tokens < 0:
        raise ValueError("the answer's usage is not a count of tokens")
    return tokens


def _model_entries(answer: Any) -> list[dict[str, Any]]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("id"), str) for entry in data):
        raise ValueError("the answer has no list of models with ids")
    return data
