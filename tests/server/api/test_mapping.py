"""The sans-I/O parts of the API: error mapping, wire formats, OpenAI request reading."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.exceptions import RequestValidationError

import beamish.server.api as api_package
from beamish.auth import (
    BadTokenSignatureError,
    MissingTokenError,
    SigningKeyError,
    TokenExpiredError,
)
from beamish.llm.errors import (
    BadRequestError,
    FallbacksExhaustedError,
    NoUsableProviderError,
    ProviderCallError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    StreamBrokenError,
)
from beamish.llm.hierarchy import Layer, ResolvedConfig
from beamish.llm.providers.base import Attempt, Usage
from beamish.llm.providers.stream import StreamDone, StreamError, TokenDelta
from beamish.request_log import LLMRequestLog
from beamish.server.api.errors import (
    ConfigurationError,
    ForbiddenError,
    InvalidRequestError,
    ResourceNotFoundError,
    describe,
)
from beamish.server.api.openai_compat import (
    ChatCompletionRequest,
    OpenAIWire,
    config_request,
    conversation,
    finish_reason,
)
from beamish.server.api.sessions import SessionWire, implicit_session_id
from beamish.server.api.sse import StreamInfo, sse_frame
from beamish.sessions.errors import SessionLimitError, SessionNotFoundError, SessionOwnerError
from beamish.store import LLMParameters
from beamish.store.errors import (
    ConfigNotFoundError,
    DuplicateProviderError,
    SecretKeyError,
    StoreUnavailableError,
    UsageBackpressureError,
)
from beamish.templates.errors import (
    TemplateError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSchemaError,
    TemplateSyntaxError,
    TemplateVariablesError,
)
from tests.server.api._support import parse_sse


def _exhausted(last: Exception) -> FallbacksExhaustedError:
    error = FallbacksExhaustedError([Attempt(provider="p", model="m", error=str(last))])
    error.__cause__ = last
    return error


def _call_error(kind: type[ProviderCallError], retry_after: float | None = None,
                ) -> ProviderCallError:
    return kind("it failed", provider="p", model="m", retry_after=retry_after)


@pytest.mark.parametrize(("error", "status", "kind"), [
    (MissingTokenError(), 401, "authentication_error"),
    (BadTokenSignatureError(), 401, "authentication_error"),
    (TokenExpiredError(0.0), 401, "authentication_error"),
    (ForbiddenError("no"), 403, "permission_denied"),
    (SessionOwnerError("s", "ada"), 403, "permission_denied"),
    (SessionNotFoundError("s"), 404, "not_found"),
    (ConfigNotFoundError("ada", "openai"), 404, "not_found"),
    (ResourceNotFoundError("none"), 404, "not_found"),
    (DuplicateProviderError("p"), 409, "conflict"),
    (InvalidRequestError("bad"), 400, "invalid_request"),
    (_exhausted(_call_error(BadRequestError)), 400, "invalid_request"),
    (_exhausted(_call_error(RateLimitedError, retry_after=3.0)), 429, "rate_limited"),
    (_exhausted(_call_error(ProviderTimeoutError)), 504, "provider_timeout"),
    (_exhausted(_call_error(ProviderUnavailableError)), 502, "provider_error"),
    (UsageBackpressureError("full"), 503, "overloaded"),
    (StoreUnavailableError("down"), 503, "store_unavailable"),
    (SessionLimitError(3), 503, "overloaded"),
    (NoUsableProviderError("ada", "chat", ()), 503, "no_usable_provider"),
    (SecretKeyError("no key"), 500, "configuration_error"),
    (SigningKeyError("no key"), 500, "configuration_error"),
    (ConfigurationError("no key"), 500, "configuration_error"),
    (TemplateNotFoundError("none"), 404, "not_found"),
    (TemplateSyntaxError("prompt", 2, "bad"), 422, "validation_error"),
    (TemplateSchemaError("bad"), 422, "validation_error"),
    (TemplateVariablesError("t", ("x: missing",)), 422, "validation_error"),
    (TemplateRenderError("too_slow", "slow"), 422, "template_render_error"),
    (TemplateError("other"), 500, "internal_error"),
    (RuntimeError("boom"), 500, "internal_error"),
])
def test_every_error_has_a_status_and_a_type(error: Exception, status: int,
                                             kind: str) -> None:
    """describe maps each error class to the status and type the module table gives."""
    info = describe(error)
    assert (info.status, info.type) == (status, kind)


def test_overload_and_rate_limits_say_when_to_retry() -> None:
    """503s carry Retry-After: 1; a provider 429 passes its own Retry-After on."""
    assert describe(UsageBackpressureError("full")).headers == {"Retry-After": "1"}
    limited = _exhausted(_call_error(RateLimitedError, retry_after=12.4))
    assert describe(limited).headers == {"Retry-After": "12"}
    assert describe(MissingTokenError()).headers["WWW-Authenticate"].startswith("Bearer")


def test_an_internal_error_hides_its_message() -> None:
    """An unexpected exception's text (which could hold anything) is not answered."""
    assert "secret-thing" not in describe(RuntimeError("secret-thing")).message


def test_validation_errors_name_the_place_and_never_the_value() -> None:
    """A 422 lists location and message of each problem, and drops the input sent."""
    error = RequestValidationError([
        {"loc": ("body",), "msg": "Field required", "type": "missing",
         "input": {"api_key": "sk-very-secret-value-123456"}},
        {"loc": ("body", "kind"), "msg": "Input should be 'openai'", "type": "literal_error",
         "input": "nope"}])
    info = describe(error)
    assert info.status == 422
    assert info.message == ("the request is not valid: body: Field required; body.kind: "
                            "Input should be 'openai'")
    dumped = info.body().model_dump_json()
    assert "sk-very-secret" not in dumped
    assert "nope" not in dumped


# --- wires ---------------------------------------------------------------------------------


CONFIG = ResolvedConfig(provider="echo", model="echo-1",
                        parameters=LLMParameters(temperature=0.7),
                        sources={"provider": Layer.SYSTEM_DEFAULT, "model": Layer.SYSTEM_DEFAULT,
                                 "temperature": Layer.REQUEST},
                        user_id="ada", task_type="chat", tier="free")
INFO = StreamInfo(request_id="r1", session_id="s1", config=CONFIG, provider="echo",
                  model="echo-1")
DONE = StreamDone(usage=Usage(prompt_tokens=2, completion_tokens=3), provider="echo",
                  provider_name="echo", model="echo-1", finish_reason="stop", offline=True,
                  attempts=())
BROKEN = StreamError(error=StreamBrokenError("cut", provider="p", model="m"),
                     usage=Usage(completion_tokens=1), provider="echo",
                     provider_name="echo", model="echo-1", attempts=())


def test_an_sse_frame_is_event_then_one_data_line() -> None:
    """Frames are 'event:' (optional) and one compact 'data:' line, then a blank line."""
    assert sse_frame({"a": "x\ny"}, "token") == b'event: token\ndata: {"a":"x\\ny"}\n\n'
    assert sse_frame("[DONE]") == b"data: [DONE]\n\n"


def test_the_session_wire_frames_tokens_done_and_errors() -> None:
    """token carries the delta; done the usage and provenance; error the failure."""
    wire = SessionWire()
    assert wire.opening(INFO) == b""
    token = parse_sse(wire.event(INFO, TokenDelta(text="hi ")).decode())
    assert [(e.event, e.json()) for e in token] == [("token", {"request_id": "r1",
                                                               "delta": "hi "})]
    [done] = parse_sse(wire.event(INFO, DONE).decode())
    assert done.event == "done"
    assert done.json()["usage"] == {"prompt_tokens": 2, "completion_tokens": 3,
                                    "total_tokens": 5}
    assert done.json()["config"]["sources"]["temperature"] == "request"
    [error] = parse_sse(wire.event(INFO, BROKEN).decode())
    assert (error.event, error.json()["error"]["type"]) == ("error", "provider_error")
    [failed] = parse_sse(wire.failure("r1", describe(UsageBackpressureError("x"))).decode())
    assert failed.json()["error"]["type"] == "overloaded"


def test_the_openai_wire_matches_openais_chunks() -> None:
    """Role chunk, content chunks, finish chunk, usage chunk (choices []), then [DONE]."""
    wire = OpenAIWire(include_usage=True, created=123)
    frames = b"".join([wire.opening(INFO), wire.event(INFO, TokenDelta(text="hi")),
                       wire.event(INFO, DONE)])
    events = parse_sse(frames.decode())
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert {(c["object"], c["created"], c["model"]) for c in chunks} == {
        ("chat.completion.chunk", 123, "echo-1")}
    assert [c["choices"][0]["delta"] for c in chunks[:3]] == [
        {"role": "assistant", "content": ""}, {"content": "hi"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    assert [c["usage"] for c in chunks[:3]] == [None, None, None]
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3,
                                  "total_tokens": 5}


def test_the_openai_wire_without_include_usage_has_no_usage_field() -> None:
    """Without stream_options.include_usage, chunks carry no usage and none comes last."""
    wire = OpenAIWire(include_usage=False, created=0)
    events = parse_sse((wire.event(INFO, TokenDelta(text="x")) + wire.event(INFO, DONE))
                       .decode())
    assert [e.data for e in events][-1] == "[DONE]"
    assert all("usage" not in e.json() for e in events[:-1])
    assert len(events) == 3


def test_the_openai_wire_ends_a_broken_stream_with_an_error_object() -> None:
    """A broken stream's last frame is {"error": ...}, which the SDK raises as APIError."""
    wire = OpenAIWire(include_usage=True, created=0)
    [event] = parse_sse(wire.event(INFO, BROKEN).decode())
    assert event.json()["error"]["type"] == "provider_error"


# --- reading OpenAI requests ---------------------------------------------------------------


def _request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], **fields})


@pytest.mark.parametrize(("model", "provider", "name"), [
    ("openai:gpt-4o", "openai", "gpt-4o"),
    ("gpt-4o", None, "gpt-4o"),
    ("llama3.1:8b", None, "llama3.1:8b"),
    ("ollama:llama3.1:8b", "ollama", "llama3.1:8b"),
])
def test_a_model_names_a_provider_only_with_a_known_kind_prefix(
        model: str, provider: str | None, name: str) -> None:
    """provider:model names both; a bare model pairs with the resolved provider."""
    request = config_request(_request(model=model))
    assert request is not None
    assert (request.provider, request.model) == (provider, name)


@pytest.mark.parametrize("model", [None, "beamish", "default", "Default", ""])
def test_an_alias_or_no_model_leaves_the_choice_to_the_callers_preferences(
        model: str | None) -> None:
    """No model and the aliases add nothing to resolution's request layer."""
    assert config_request(_request(model=model)) is None


def test_sampling_fields_become_request_parameters() -> None:
    """temperature, top_p and max_completion_tokens (over max_tokens) are the request's."""
    request = config_request(_request(temperature=0.2, top_p=0.9, max_tokens=5,
                                      max_completion_tokens=7))
    assert request is not None
    assert request.parameters == LLMParameters(temperature=0.2, top_p=0.9, max_tokens=7)


def test_messages_become_beamish_messages() -> None:
    """developer is a system message; text parts are joined; unknown fields are ignored."""
    messages = conversation(_request(messages=[
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}], "name": "ada"}],
        user="ada", seed=1))
    assert [(m.role, m.content) for m in messages] == [("system", "be brief"),
                                                       ("user", "a\nb")]


@pytest.mark.parametrize(("fields", "said"), [
    ({"n": 2}, "n > 1"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "image_url"),
])
def test_what_beamish_cannot_do_is_refused_not_ignored(fields: dict[str, object],
                                                      said: str) -> None:
    """n > 1, tools, tool messages and non-text parts are 400s saying which."""
    with pytest.raises(InvalidRequestError, match=re.escape(said)):
        conversation(_request(**fields))


@pytest.mark.parametrize(("given", "answered"), [
    ("stop", "stop"), ("length", "length"), ("end_turn", "stop"), ("max_tokens", "length"),
    (None, "stop"), ("weird", "stop")])
def test_finish_reasons_are_openais(given: str | None, answered: str) -> None:
    """Anthropic's and unknown finish reasons become OpenAI's."""
    assert finish_reason(given) == answered


def test_implicit_session_ids_are_per_user_and_valid_ids() -> None:
    """Each user has one implicit id, distinct from any other user's, short and reserved."""
    ids = {implicit_session_id(u) for u in ("ada", "bob", "ada ", "x" * 256)}
    assert len(ids) == 4
    assert all(i.startswith("openai.") and len(i) == 39 for i in ids)
    assert implicit_session_id("ada") == implicit_session_id("ada")


def test_a_log_line_is_one_json_object() -> None:
    """The request log line is compact JSON with the event name first."""
    line = LLMRequestLog(request_id="r", user_id="ada", session_id="s", endpoint="openai",
                         stream=True, task_type="chat", provider="echo", model="echo-1",
                         latency_ms=1, prompt_tokens=2, completion_tokens=3,
                         outcome="ok").to_json()
    assert "\n" not in line
    assert next(iter(json.loads(line))) == "event"


def test_the_package_exports_its_public_names_once() -> None:
    """__all__ is exactly the public API, each name listed once and importable."""
    assert sorted(api_package.__all__) == [
        "ApiAuth", "ApiError", "ConfigurationError", "ErrorBody", "ErrorDetail",
        "ForbiddenError", "InvalidRequestError", "LLMRequestLog", "ResourceNotFoundError",
        "api_router", "create_app", "implicit_session_id", "install_api",
        "install_error_handlers"]
    assert len(api_package.__all__) == len(set(api_package.__all__))
    assert all(hasattr(api_package, name) for name in api_package.__all__)
