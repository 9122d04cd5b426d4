"""API keys: masked in every string, read from the store, settings or environment in order."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from beamish.llm.errors import UnauthorizedError
from beamish.llm.providers import ApiKey, mask_key
from beamish.llm.providers.keys import decrypt_key, find_api_key, safe_cause
from beamish.store import SecretBox, SecretKeyError

KEY = "sk-proj-abcdefghijklmnop1234"


def test_mask_shows_head_and_tail_only() -> None:
    """A long key shows three leading and four trailing characters; a short one nothing."""
    assert mask_key(KEY) == "sk-...1234"
    assert mask_key("short-key") == "****"


def test_api_key_never_shows_its_value() -> None:
    """str, repr and f-strings give the masked key; reveal() is the way to the value."""
    key = ApiKey(KEY)
    assert KEY not in f"{key} {key!r} {[key]}"
    assert repr(key) == "ApiKey('sk-...1234')"
    assert key.reveal() == KEY


def test_api_key_scrubs_text() -> None:
    """Every occurrence of the key in a text is masked."""
    assert ApiKey(KEY).scrub(f"bad key {KEY}, really {KEY}") == (
        "bad key sk-...1234, really sk-...1234")


def test_api_keys_compare_by_value() -> None:
    """Equal values make equal (and equally hashed) keys; blank keys are refused."""
    assert ApiKey(KEY) == ApiKey(f" {KEY} ")
    assert hash(ApiKey(KEY)) == hash(ApiKey(KEY))
    assert ApiKey(KEY) != ApiKey(KEY + "x")
    assert ApiKey(KEY) != KEY
    with pytest.raises(ValueError, match="blank"):
        ApiKey("  ")


def test_settings_key_beats_the_sdk_variable() -> None:
    """llm.providers.<kind>.api_key is read before OPENAI_API_KEY."""
    environ = {"OPENAI_API_KEY": "sk-from-environment-000000"}
    assert find_api_key("openai", configured=SecretStr(KEY), environ=environ) == ApiKey(KEY)
    assert find_api_key("openai", configured=None, environ=environ) == ApiKey(
        "sk-from-environment-000000")
    assert find_api_key("anthropic", configured=None, environ=environ) is None


def test_keyless_kinds_have_no_sdk_variable() -> None:
    """Ollama has no standard key variable; blank values count as unset."""
    assert find_api_key("ollama", configured=None, environ={"OPENAI_API_KEY": KEY}) is None
    assert find_api_key("openai", configured=SecretStr(" "), environ={}) is None


def test_stored_keys_decrypt_with_the_secret_box() -> None:
    """A ciphertext made with BEAMISH_SECRET_KEY decrypts; another key fails cleanly."""
    box = SecretBox(Fernet.generate_key().decode())
    assert decrypt_key(box.encrypt(KEY), box) == ApiKey(KEY)
    with pytest.raises(SecretKeyError):
        decrypt_key(box.encrypt(KEY), SecretBox(Fernet.generate_key().decode()))


def test_safe_cause_drops_a_chain_holding_the_key() -> None:
    """An SDK exception quoting the key (itself or in its causes) is not kept as __cause__."""
    key = ApiKey(KEY)
    clean = RuntimeError("connection refused")
    assert safe_cause(clean, key) is clean
    assert safe_cause(clean, None) is clean
    leaky = RuntimeError("wrapped")
    leaky.__cause__ = ValueError(f"Incorrect API key provided: {KEY}")
    assert safe_cause(leaky, key) is None


def test_call_errors_carry_provider_model_status_and_retry_after() -> None:
    """The error classes carry provider, model, status and retry_after alongside the text."""
    error = UnauthorizedError("openai:gpt answered HTTP 401", provider="openai", model="gpt",
                              status_code=401)
    assert (error.provider, error.model, error.status_code, error.retry_after) == (
        "openai", "gpt", 401, None)
