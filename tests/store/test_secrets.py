"""SecretBox: API keys are encrypted before the store sees them, and never shown."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from beamish.store import SecretBox, SecretKeyError


def test_round_trip_and_ciphertext_differs() -> None:
    """Decrypting the ciphertext gives the plaintext back; the ciphertext hides it."""
    box = SecretBox(Fernet.generate_key().decode())
    ciphertext = box.encrypt("sk-live-123")
    assert b"sk-live-123" not in ciphertext
    assert box.decrypt(ciphertext) == "sk-live-123"


def test_rotation_decrypts_with_old_keys() -> None:
    """With a new key prepended, old ciphertexts still decrypt."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ciphertext = SecretBox(old).encrypt("sk")
    assert SecretBox(f"{new},{old}").decrypt(ciphertext) == "sk"


def test_wrong_key_is_a_secret_key_error() -> None:
    """A ciphertext from another key raises SecretKeyError, not a cryptography error."""
    ciphertext = SecretBox(Fernet.generate_key().decode()).encrypt("sk")
    with pytest.raises(SecretKeyError, match="cannot decrypt"):
        SecretBox(Fernet.generate_key().decode()).decrypt(ciphertext)


def test_keys_never_appear_in_repr_or_errors() -> None:
    """repr hides the keys; a malformed key is not echoed in the error."""
    key = Fernet.generate_key().decode()
    assert key not in repr(SecretBox(key))
    with pytest.raises(SecretKeyError, match="malformed key") as info:
        SecretBox("not-a-real-key-but-secret")
    assert "not-a-real-key-but-secret" not in str(info.value)


def test_from_env_requires_the_variable() -> None:
    """A missing BEAMISH_SECRET_KEY says what to set."""
    with pytest.raises(SecretKeyError, match="BEAMISH_SECRET_KEY is not set"):
        SecretBox.from_env({})
    assert SecretBox.from_env({"BEAMISH_SECRET_KEY": Fernet.generate_key().decode()})
