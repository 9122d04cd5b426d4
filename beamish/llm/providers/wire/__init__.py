"""The OpenAI-compatible API over a lean HTTP/1.1 client of our own, without the openai SDK.

``OpenAIWireProvider`` serves the kinds ``ollama``, ``tgi`` and ``openai_compatible`` (vLLM,
LM Studio, llama.cpp, ...); ``build_provider`` picks it for them, while the ``openai`` kind
keeps the official SDK (``OpenAIProvider``), and Anthropic its own. Both OpenAI clients give
the same answers and the same errors for the same upstream behaviour; the tests run each
fault of the fake upstream through both.

Why it exists: profiled under load through a fast local upstream, the openai SDK's own work
per call (transforming the parameters against its typed dicts, building the request,
constructing the answer's objects, its retry and header wrappers) and httpx's connection
pool and HTTP machinery (head and body as two writes) were most of the server's CPU per
request. This client sends each request as one pre-encoded write on a kept-alive
connection, parses answers with llhttp (``httptools``) and JSON with ``orjson``.

What it speaks (``http1``): HTTP/1.1 over TCP or TLS, keep-alive with a bounded pool,
``Content-Length``, chunked and close-delimited answers. What it does not: HTTP/2, proxies
(``build_provider`` keeps the SDK for a base URL that the environment's ``*_proxy``
variables send through a proxy), redirects (a 3xx is an error naming its status), compressed
answers (it asks for none). Server-sent events are read by ``sse``, without I/O.

Per call: ``timeout_s`` bounds each wait (a pool slot, the connection, each piece of the
answer), answers stop at ``bounded.MAX_ANSWER_BYTES``, and keys never show in errors
(``keys.safe_cause``).
"""

from beamish.llm.providers.wire.provider import COMPATIBLE_KINDS, OpenAIWireProvider

__all__ = ["COMPATIBLE_KINDS", "OpenAIWireProvider"]
