"""Request bodies are bounded (413/422) and malformed ones are typed JSON errors, never 500s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from beamish.settings import ServerSettings
from tests.server.api._support import ApiServer, make_settings, serve_api

pytestmark = pytest.mark.anyio

SMALL = ServerSettings(max_body_bytes=4096, max_json_depth=8, max_string_chars=1000,
                       max_array_items=20, max_metadata_bytes=512)


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[ApiServer]:
    """A server with small body limits."""
    settings = make_settings(tmp_path).model_copy(update={"server": SMALL})
    async with serve_api(tmp_path, settings=settings) as server:
        yield server


def _v1(content: str, count: int = 1) -> dict[str, Any]:
    return {"model": "beamish", "messages": [{"role": "user", "content": content}] * count}


async def test_a_declared_length_over_the_limit_is_a_413_unread(small: ApiServer) -> None:
    """A Content-Length over max_body_bytes is refused before one byte of the body is read."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(8):
            pulled += 1
            yield b" " * 1024

    answer = await small.http.post("/v1/chat/completions", headers={
        **small.auth(), "content-type": "application/json", "content-length": str(8 * 1024)},
        content=body())
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "request_too_large"
    assert "server.max_body_bytes" in answer.json()["error"]["message"]
    assert pulled == 0


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(small: ApiServer) -> None:
    """Without a Content-Length the body is counted as it comes and cut off at the limit."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b" " * 1024

    answer = await small.http.post("/v1/chat/completions", headers=small.auth(),
                                   content=body())
    assert answer.status_code == 413
    assert pulled == 5  # 4 KiB pass, the fifth chunk passes the limit: the rest is never read


@pytest.mark.parametrize(("path", "method", "body", "loc"), [
    ("/v1/chat/completions", "POST", _v1("x" * 1001), ["body", "messages", 0, "content"]),
    ("/v1/chat/completions", "POST", _v1("hi", count=21), ["body", "messages"]),
    ("/api/sessions", "POST", {"session_id": "s" * 1001}, ["body", "session_id"]),
    ("/api/users/ada/llm-config", "PUT",
     {"provider": "echo", "model": "echo", "parameters": {"fallback_models": ["m"] * 21}},
     ["body", "parameters", "fallback_models"]),
])
async def test_a_field_over_a_limit_is_a_422_naming_it(
        small: ApiServer, path: str, method: str, body: Any, loc: list[Any]) -> None:
    """Too long a string or array anywhere in a body is a 422 whose details name the field."""
    answer = await small.http.request(method, path, headers=small.auth(), json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == loc


async def test_metadata_over_its_limit_is_refused_and_not_stored(small: ApiServer) -> None:
    """A provider config's metadata, returned on every read, is bounded in JSON bytes."""
    path = "/api/users/ada/llm-config/providers/echo"
    big = {"notes": ["y" * 100] * 6}
    answer = await small.http.put(path, headers=small.auth(),
                                  json={"model": "echo", "metadata": big})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == ["body", "metadata"]
    assert "server.max_metadata_bytes" in answer.json()["error"]["message"]
    assert (await small.http.get(path, headers=small.auth())).status_code == 404
    fits = await small.http.put(path, headers=small.auth(),
                                json={"model": "echo", "metadata": {"notes": "short"}})
    assert fits.status_code == 200


MALFORMED = [
    ("lone surrogate escape", b'{"model": "echo", "messages": [{"role": "user", '
                              b'"content": "a\\ud800b"}]}'),
    ("raw UTF-8 surrogate", b'{"model": "echo", "messages": [{"role": "user", '
                            b'"content": "a\xed\xa0\x80b"}]}'),
    ("surrogate in a key", b'{"model": "echo", "messages": [{"role": "user", '
                           b'"content": "x", "\\udfff": 1}]}'),
    ("deep nesting", b'{"model": "echo", "messages": ' + b"[" * 100_000 + b"]" * 100_000
     + b"}"),
    ("nesting past the limit", b'{"model": "echo", "messages": [{"role": "user", '
                               b'"content": "x", "name": ' + b"[" * 40 + b"]" * 40 + b"}]}"),
    ("not UTF-8", b'{"model": "echo", "messages": "\xff\xfe"}'),
    ("not JSON", b'{"model": '),
]


@pytest.mark.parametrize(("path", "method"), [
    ("/v1/chat/completions", "POST"), ("/api/sessions", "POST"),
    ("/api/users/ada/llm-config/providers/echo", "PUT"), ("/api/admin/providers", "POST"),
])
@pytest.mark.parametrize(("case", "body"), MALFORMED, ids=[case for case, _ in MALFORMED])
async def test_a_malformed_body_is_a_typed_json_error(
        tmp_path: Path, path: str, method: str, case: str, body: bytes) -> None:
    """Surrogates, deep nesting, bad UTF-8, bad JSON: a JSON 4xx in the API's error shape."""
    async with serve_api(tmp_path, real_server=True) as api:
        answer = await api.http.request(method, path, content=body, headers={
            **api.admin(), "content-type": "application/json"})
        assert answer.status_code in (400, 422), (case, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()["error"]) >= {"type", "message"}
        again = await api.http.get("/health")  # the connection and the server survive
        assert again.status_code == 200


async def test_a_surrogate_never_reaches_the_store(api: ApiServer) -> None:
    """The metadata holding one is refused; the user's configuration stays as it was."""
    path = "/api/users/ada/llm-config/providers/echo"
    answer = await api.http.put(path, headers={**api.auth(), "content-type": "application/json"},
                                content=json.dumps({"model": "echo",
                                                    "metadata": {"k": "\udc00"}}).encode())
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == ["body", "metadata", "k"]
    assert (await api.http.get(path, headers=api.auth())).status_code == 404


async def test_bodies_within_the_limits_and_bodiless_requests_are_served(
        small: ApiServer) -> None:
    """The limits leave ordinary calls alone."""
    for body in (_v1("x" * 1000), _v1("x" * 100, count=20)):
        answer = await small.http.post("/v1/chat/completions", headers=small.auth(), json=body)
        assert answer.status_code == 200
    assert (await small.http.get("/api/llm/models", headers=small.auth())).status_code == 200
