"""Provider API keys: where they come from, and how they stay out of every string.

A provider's key is the first of:

1. its registry row's ``api_key_ciphertext``, decrypted with ``SecretBox`` (keyed by
   ``BEAMISH_SECRET_KEY``; see ``beamish.store.secrets``);
2. the settings' ``llm.providers.<kind>.api_key`` (``BEAMISH_LLM__PROVIDERS__<KIND>__API_KEY``);
3. the SDK's own variable for the kind: ``OPENAI_API_KEY`` or ``ANTHROPIC_API_KEY``.

An ``ApiKey`` never shows its value: ``str`` and ``repr`` give the masked form
(``sk-...wxyz``), and ``reveal()`` — called only where the key is handed to an SDK — is the one
way to the plaintext. Every key made is remembered by the process's scrubber
(``beamish.llm.scrub.SECRETS``), so error messages and log lines mask it, or any fragment of
it, wherever it shows. ``scrub`` masks it (and anything key-like) inside text, for servers
that echo it back in their error messages, and ``safe_cause`` keeps an SDK exception as
``__cause__`` only when its text holds no part of the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from beamish.llm.scrub import SECRETS, remember_secret
from beamish.llm.settings import STANDARD_KEY_ENV
from beamish.store.models import Provider
from beamish.store.secrets import SecretBox

_SHOWN_HEAD = 3
_SHOWN_TAIL = 4
_MIN_PARTLY_SHOWN = 16


def mask_key(key: str) -> str:
    """The key with all but its head and tail hidden: ``sk-...wxyz``; ``****`` if short."""
    if len(key) < _MIN_PARTLY_SHOWN:
        return "****"
    return f"{key[:_SHOWN_HEAD]}...{key[-_SHOWN_TAIL:]}"


class ApiKey:
    """A provider API key whose value shows only through ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap ``value``; raises ``ValueError`` if it is blank."""
        if not value.strip():
            raise ValueError("an API key cannot be blank")
        self._value = value.strip()
        remember_secret(self._value, self.masked)

    def reveal(self) -> str:
        """The plaintext key, for the SDK client and nothing else."""
        return self._value

    @property
    def masked(self) -> str:
        """The key as logs and errors may show it."""
        return mask_key(self._value)

    def scrub(self, text: str) -> str:
        """``text`` with the key, any fragment of it and anything else key-like masked."""
        return SECRETS.scrub(text)

    def __repr__(self) -> str:
        return f"ApiKey({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


def decrypt_key(ciphertext: bytes, box: SecretBox) -> ApiKey:
    """The key stored as ``ciphertext``; raises the store's ``SecretKeyError`` if it cannot."""
    return ApiKey(box.decrypt(ciphertext))


def find_api_key(kind: Provider, *, configured: SecretStr | None,
                 environ: Mapping[str, str]) -> ApiKey | None:
    """The key from settings (``configured``) or the kind's SDK variable, if any is set."""
    if configured is not None and configured.get_secret_value().strip():
        return ApiKey(configured.get_secret_value())
    variable = STANDARD_KEY_ENV.get(kind)
    value = environ.get(variable, "") if variable else ""
    return ApiKey(value) if value.strip() else None


def safe_cause(error: BaseException, key: ApiKey | None) -> BaseException | None:
    """``error`` if neither it nor its causes mention ``key``, else None (drop the chain)."""
    if key is None:
        return error
    seen: BaseException | None = error
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if SECRETS.knows_part_of(str(seen)) or SECRETS.knows_part_of(repr(seen.args)):
            return None
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return error
