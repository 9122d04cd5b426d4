"""Property: whatever JSON a caller sends to the API's body-taking routes, it never gets a 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.api._support import serve_api

ROUTES = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/sessions"),
    ("PUT", "/api/users/ada/llm-config"),
    ("PUT", "/api/users/ada/llm-config/providers/echo"),
    ("PUT", "/api/users/ada/llm-config/tasks/chat"),
    ("POST", "/api/admin/providers"),
]

_plain = st.text(max_size=8)
_text = _plain | st.builds(lambda head, odd, tail: head + odd + tail, _plain, st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\u200b", "\x1b"]), _plain)  # lone surrogates, controls
_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | _text
            | st.sampled_from(["echo", "user", "assistant", "openai_compatible",
                               "http://127.0.0.1:9/v1", "http://exa\u200bmple.com"]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_text, inner, max_size=4), max_leaves=12)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "x"]), "content": _text},
    optional={"name": _json}) | st.dictionaries(_text, _json, max_size=3)
_asked = st.fixed_dictionaries({"role": st.just("user"), "content": _text})
_call = st.fixed_dictionaries({"model": st.just("echo"), "messages": st.builds(
    lambda head, last: [*head, last], st.lists(_message, max_size=2), _asked)})
_bodies = st.one_of(
    _json, _call, _json.map(lambda value: {"model": "echo", "messages": value}),
    st.fixed_dictionaries({}, optional={
        "model": st.just("echo"), "messages": st.lists(_message, min_size=1, max_size=3),
        "temperature": _json, "stream": st.booleans() | _json, "max_tokens": _json,
        "provider": st.sampled_from(["echo", "openai"]) | _json, "parameters": _json,
        "metadata": _json, "content": _text | _json, "session_id": _text | _json,
        "name": _text, "kind": st.sampled_from(["echo", "ollama"]) | _json,
        "base_url": _scalars, "api_key": _json}),
)


def test_no_json_body_gets_a_server_error(tmp_path: Path) -> None:
    """Random JSON (surrogates, NaN, odd shapes) on six routes: always a 2xx or a typed 4xx."""
    with asyncio.Runner() as runner:
        stack = contextlib.AsyncExitStack()
        api = runner.run(stack.enter_async_context(serve_api(tmp_path)))
        try:
            @settings(max_examples=200, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
            @given(route=st.sampled_from(ROUTES), body=_bodies)
            def check(route: tuple[str, str], body: Any) -> None:
                method, path = route
                content = json.dumps(body).encode()  # NaN and lone surrogates as JSON allows
                answer = runner.run(api.http.request(method, path, content=content, headers={
                    **api.admin(), "content-type": "application/json"}))
                assert answer.status_code < 500, (method, path, content, answer.text)
                if answer.status_code >= 400:
                    assert set(answer.json()["error"]) >= {"type", "message"}

            check()
        finally:
            runner.run(stack.aclose())
