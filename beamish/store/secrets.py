"""Encrypting provider API keys before they reach the store.

The store only ever sees ciphertext (``ProviderRecord.api_key_ciphertext``). ``SecretBox``
encrypts with Fernet (AES-128-CBC + HMAC-SHA256, authenticated) keyed from the environment:

* ``BEAMISH_SECRET_KEY`` — one or more Fernet keys separated by commas. The first encrypts;
  all of them decrypt, so a key can be rotated by prepending the new one. Generate a key with
  ``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``.

Neither keys nor plaintexts appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from beamish.store.errors import SecretKeyError

ENV_VAR = "BEAMISH_SECRET_KEY"


class SecretBox:
    """Encrypts and decrypts secrets with one or more Fernet keys."""

    __slots__ = ("_fernet",)

    def __init__(self, keys: str) -> None:
        """Build from comma-separated Fernet keys; raises ``SecretKeyError`` if malformed."""
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise SecretKeyError(f"{ENV_VAR} is empty; set it to a Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in parts])
        except ValueError:
            # The original error message is about the key's bytes; keep it out of logs.
            raise SecretKeyError(
                f"{ENV_VAR} holds a malformed key: each key must be 32 url-safe base64-encoded "
                "bytes (Fernet.generate_key())"
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SecretBox:
        """The box keyed by ``BEAMISH_SECRET_KEY``; raises ``SecretKeyError`` if unset."""
        keys = environ.get(ENV_VAR)
        if keys is None:
            raise SecretKeyError(
                f"{ENV_VAR} is not set; provider API keys cannot be stored without it"
            )
        return cls(keys)

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def encrypt(self, plaintext: str) -> bytes:
        """The ciphertext of ``plaintext`` (the store keeps only this)."""
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> str:
        """The plaintext; raises ``SecretKeyError`` if no key matches or it was tampered with."""
        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"cannot decrypt the secret: it was encrypted with a key not in {ENV_VAR}, "
                "or it was modified"
            ) from None
