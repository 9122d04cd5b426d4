"""Scrubbing: fragments of known keys (split or not), key-like tokens, and what is left alone."""

from __future__ import annotations

import logging
import sys

from beamish.llm.errors import (
    PROVIDER_REJECTED,
    PROVIDER_UNAVAILABLE,
    FallbacksExhaustedError,
    ProviderCallError,
)
from beamish.llm.providers import ApiKey
from beamish.llm.providers.base import Attempt
from beamish.llm.providers.failures import connection_error, status_error
from beamish.llm.scrub import MASK, Scrubber, ScrubbingFormatter, scrub

KEY = "sk-proj-Zq81xVbN3mKt7LwP0aYc"


def fragments(secret: str, size: int = 8) -> list[str]:
    """Every run of ``size`` characters of ``secret``."""
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


def leaks(text: str, secret: str = KEY) -> bool:
    """Whether any 8 characters of ``secret`` show in ``text``, whitespace removed."""
    compact = "".join(text.split())
    return any(part in compact for part in fragments(secret))


def test_a_fragment_of_a_known_key_is_masked() -> None:
    """Any 8 or more consecutive characters of a known key are masked, wherever they are."""
    scrubber = Scrubber([KEY])
    for start, end in ((0, 8), (5, 20), (12, len(KEY)), (3, 11)):
        said = scrubber.scrub(f"upstream says: key '{KEY[start:end]}' is wrong")
        assert not leaks(said), said
        assert MASK in said


def test_a_key_split_across_lines_is_masked_whole() -> None:
    """A key broken by a newline or spaces is masked, the break included."""
    scrubber = Scrubber([KEY])
    said = scrubber.scrub(f"bad key {KEY[:10]}\n   {KEY[10:]} (refused)")
    assert said == f"bad key {MASK} (refused)"


def test_a_known_key_found_whole_shows_as_registered() -> None:
    """The whole key becomes the form it was registered with (an ApiKey's sk-...tail)."""
    scrubber = Scrubber()
    scrubber.add(KEY, "sk-...LwP0aYc")
    assert scrubber.scrub(f"key={KEY};") == "key=sk-...LwP0aYc;"


def test_unknown_key_like_tokens_are_masked() -> None:
    """sk-/sk-ant- keys, bearer credentials and long random tokens, known or not."""
    scrubber = Scrubber()
    assert scrubber.scrub("got sk-abcdefgh12345678 and sk-ant-api03-XYZxyz0987") == (
        f"got {MASK} and {MASK}")
    assert scrubber.scrub("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig") == (
        f"Authorization: Bearer {MASK}")
    assert scrubber.scrub("token Qm9vTjE4ZGxhc2RqZmFzZGZqYXNkZmFzZGY9PQ2x9 ok") == (
        f"token {MASK} ok")


def test_ordinary_text_and_hex_ids_are_left_alone() -> None:
    """Words, short fragments, hex request ids and paths are not secrets."""
    scrubber = Scrubber([KEY])
    text = ("request 0190a4c2f1e37b8c9d0e1f2a3b4c5d6e failed: model 'gpt-4o-mini' at "
            f"http://127.0.0.1:8000/v1/chat/completions; tail {KEY[-5:]}; risk-assessment-2024")
    assert scrubber.scrub(text) == text


def test_every_api_key_made_is_known_to_the_process_scrubber() -> None:
    """An ApiKey registers itself: the module's scrub masks its fragments from then on."""
    secret = "sk-registered-9Hq2Lm4Np6Rs8Tu"
    before = scrub(f"part {secret[4:16]}")
    ApiKey(secret)
    assert not leaks(scrub(f"part {secret[4:16]}"), secret)
    assert leaks(before, secret)


def test_the_log_formatter_scrubs_messages_and_tracebacks() -> None:
    """A record's message, arguments and traceback come out scrubbed."""
    ApiKey(KEY)
    formatter = ScrubbingFormatter("%(levelname)s %(message)s")
    try:
        raise RuntimeError(f"upstream echoed {KEY[2:14]}")
    except RuntimeError:
        record = logging.LogRecord("beamish.llm", logging.WARNING, __file__, 1,
                                   "failed: %s", (f"{KEY[:9]}\n{KEY[9:]}",), sys.exc_info())
    line = formatter.format(record)
    assert line.startswith(f"WARNING failed: {MASK}")
    assert "RuntimeError: upstream echoed" in line
    assert not leaks(line)


def test_an_upstream_error_quoting_part_of_the_key_is_scrubbed_and_kept_for_logs() -> None:
    """str() and detail quote the upstream, scrubbed; public_message quotes nothing of it."""
    key = ApiKey(KEY)
    echoed = f"Incorrect API key provided: ...{KEY[6:22]}. You can find your key at x.com"
    error = status_error(401, echoed, provider="fake", model="model-a", key=key)
    assert "You can find your key" in str(error)
    assert "You can find your key" in error.detail
    assert not leaks(str(error))
    assert error.code == PROVIDER_REJECTED
    assert error.public_message == ("fake:model-a (HTTP 401) rejected beamish's credentials; "
                                    "an administrator can check the provider's API key")


def test_public_messages_are_typed_and_name_provider_and_model_once() -> None:
    """Unavailable for 5xx, timeouts and unreachable; rejected for other 4xx; no upstream text."""
    cases: list[tuple[ProviderCallError, str]] = [
        (status_error(503, "upstream-text", provider="p", model="m"), PROVIDER_UNAVAILABLE),
        (status_error(429, "upstream-text", provider="p", model="m"), PROVIDER_UNAVAILABLE),
        (status_error(404, "upstream-text", provider="p", model="m"), PROVIDER_REJECTED),
        (connection_error("upstream-text", provider="p", model="m", timed_out=True),
         PROVIDER_UNAVAILABLE),
        (connection_error("upstream-text", provider="p", model="m", timed_out=False),
         PROVIDER_UNAVAILABLE),
    ]
    for error, code in cases:
        assert error.code == code
        assert "upstream-text" in str(error)
        assert "upstream-text" not in error.public_message
        assert error.public_message.count("p:m") == 1


def test_exhausted_fallbacks_say_each_model_once_and_the_last_failure() -> None:
    """Three failed tries of one model: its public message once; str says each failure once."""
    last = status_error(500, "boom", provider="p", model="m")
    attempts = [Attempt(provider="p", model="m", error=str(last))] * 3
    one = FallbacksExhaustedError(attempts)
    one.__cause__ = last
    assert one.public_message == last.public_message
    assert one.code == PROVIDER_UNAVAILABLE
    assert str(one).count("boom") == 1
    assert "(3 times)" in str(one)
    chain = FallbacksExhaustedError([*attempts, Attempt(provider="q", model="n", error="x")])
    chain.__cause__ = status_error(400, "bad", provider="q", model="n")
    assert chain.code == PROVIDER_REJECTED
    assert chain.public_message.startswith("every model failed (p:m, q:n); the last: q:n")
