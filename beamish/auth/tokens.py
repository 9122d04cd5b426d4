"""Signed user tokens: who a request or a socket speaks for.

A beamish user token is an HMAC-signed statement "this is user U, with scopes S, until T",
made with itsdangerous and keyed from ``BEAMISH_SECRET_KEY``::

    token = issue_token("ada")                        # scopes {"user"}
    admin = issue_token("root", admin=True, expires_in=3600)
    principal = verify_token(token)                   # Principal("ada", {"user"})
    principal.is_admin                                # False

From the shell: ``beamish token create --user ada [--admin] [--expires-in SECONDS]``.

**Scopes.** ``user`` (every token) reaches the user's own configs, sessions and usage;
``admin`` also reaches providers, global config and introspection
(:meth:`Principal.can_act_for` is the "own data or admin" check).

**The key.** ``BEAMISH_SECRET_KEY`` (or the ``secret_key`` argument) is the same variable that
keys API-key encryption in the store: one or more keys separated by commas, the first one
signing and all of them verifying, so a rotation prepends the new key and keeps old tokens
valid until the old key is dropped. Tokens use a key derived from it with HMAC-SHA256 under
their own salt, so a token signature can never be confused with anything else signed with the
same secret. Keys shorter than 16 characters are refused.

**The format.** itsdangerous' URL-safe serializer: ``payload.signature``, base64url, a compact
JSON payload ``{"sub": user_id, "scp": [scopes], "exp": unix_seconds, "jti": id}`` (``exp``
only when the token expires, ``jti`` only when it was issued with an id).

**Revocation.** A token issued with an id (``beamish token create`` gives every token one, and
records it in the store) can be revoked (``beamish token revoke ID``); a
:class:`TokenAuthenticator` given a :class:`RevocationList` refuses it
(:class:`TokenRevokedError`). The list is a cache of the store's revoked ids that the server
refreshes (``beamish.server.revocations``); checking it costs a set lookup.

The token's alphabet is ``[A-Za-z0-9_-.]``, which matters twice: it is safe in URLs,
and its base64 — the phoenix JS client's ``authToken`` goes out as the subprotocol
``base64url.bearer.phx.<btoa(token)>`` — never contains ``+`` or ``/`` (the standard base64 of
ASCII text only does for ``>``, ``?``, ``~`` and DEL), characters that browsers and the
websockets library refuse in a ``Sec-WebSocket-Protocol`` header.

**Errors** (:mod:`beamish.auth.errors`): :class:`MalformedTokenError`,
:class:`BadTokenSignatureError`, :class:`TokenExpiredError`, :class:`MissingTokenError` —
all :class:`AuthError`. No message ever contains the token or the key.

**Authenticating a connection.** An :class:`Authenticator` turns what a client presented
(a token, the connect params) into a :class:`Principal`; :class:`TokenAuthenticator` requires
a valid token, and :class:`~beamish.auth.dev_mode.DevModeAuthenticator` trusts a ``user_id``
param on loopback servers.

Options of :class:`TokenSigner` (defaults in brackets): ``secret_key`` [``BEAMISH_SECRET_KEY``]
— str, bytes, or a sequence of keys, newest first; ``clock`` [``time.time``] — seconds since
the epoch, injected by tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cachetools import LRUCache
from itsdangerous import BadData, BadSignature, URLSafeSerializer

from beamish.auth.errors import (
    BadTokenSignatureError,
    MalformedTokenError,
    MissingTokenError,
    SigningKeyError,
    TokenExpiredError,
    TokenRevokedError,
)

SECRET_KEY_ENV: Final = "BEAMISH_SECRET_KEY"
USER_SCOPE: Final = "user"
ADMIN_SCOPE: Final = "admin"
SCOPES: Final = frozenset({USER_SCOPE, ADMIN_SCOPE})
MIN_KEY_LENGTH: Final = 16
MAX_TOKEN_LENGTH: Final = 4096

VERIFIED_CACHE_SIZE: Final = 4096
"""How many verified tokens a ``TokenSigner`` remembers (each token's text and principal)."""

MAX_USER_ID_LENGTH: Final = 256

_SALT: Final = "beamish.user-token.v1"
_TOKEN_SHAPE: Final = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_TOKEN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


_FIRST_ID_CHARACTERS: Final = string.ascii_letters + string.digits


def new_token_id() -> str:
    """A fresh random token id (``jti``): 16 URL-safe characters, about 96 random bits.

    The first is a letter or digit: an id that began with ``-`` would read as an option on
    a command line (``beamish token revoke ID``)."""
    return secrets.choice(_FIRST_ID_CHARACTERS) + secrets.token_urlsafe(12)[1:]


class RevocationList:
    """The revoked token ids a server refuses: a set, replaced whole by whoever reads the
    store (``beamish.server.revocations``) and added to at once by a revocation made in this
    process. Checking is a set lookup; it never does I/O."""

    __slots__ = ("_ids",)

    def __init__(self, ids: frozenset[str] = frozenset()) -> None:
        self._ids = ids

    def replace(self, ids: frozenset[str]) -> None:
        """The store's revoked ids, as just read."""
        self._ids = ids

    def add(self, token_id: str) -> None:
        """One id revoked in this process: refused from now on, before the next read."""
        self._ids = self._ids | {token_id}

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for.

    Attributes:
        user_id: The user.
        scopes: ``{"user"}``, or ``{"user", "admin"}``.
        expires_at: When the token stops being valid (Unix seconds), or None.
        token_id: The token's id, if it was issued with one (revocable), else None.
    """

    user_id: str
    scopes: frozenset[str] = frozenset({USER_SCOPE})
    expires_at: float | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the token carries the ``admin`` scope."""
        return ADMIN_SCOPE in self.scopes

    def can_act_for(self, user_id: str) -> bool:
        """Whether this principal may reach ``user_id``'s data: its own, or any as admin."""
        return self.user_id == user_id or self.is_admin


def secret_keys_from(secret_key: str | bytes | Sequence[str | bytes] | None) -> list[bytes]:
    """The signing keys, newest first: from the argument, else ``BEAMISH_SECRET_KEY``.

    Raises:
        SigningKeyError: no key, or a key shorter than 16 characters.
    """
    if secret_key is None:
        secret_key = os.environ.get(SECRET_KEY_ENV, "")
        if not secret_key.strip():
            raise SigningKeyError(
                f"{SECRET_KEY_ENV} is not set; set it to a long random string (a Fernet key "
                "works: it also encrypts API keys) to sign and verify user tokens"
            )
    if isinstance(secret_key, str | bytes):
        raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
        keys = [part.strip() for part in raw.split(b",") if part.strip()]
    else:
        keys = [k.encode() if isinstance(k, str) else k for k in secret_key]
    if not keys:
        raise SigningKeyError(f"{SECRET_KEY_ENV} holds no key; set it to a long random string")
    for key in keys:
        if len(key) < MIN_KEY_LENGTH:
            raise SigningKeyError(
                f"a token signing key is {len(key)} characters long; use at least "
                f"{MIN_KEY_LENGTH} random characters"
            )
    return keys


class TokenSigner:
    """Issues and verifies user tokens with one key set (see the module docs).

    ``verify`` remembers the principals of the last ``VERIFIED_CACHE_SIZE`` tokens whose
    signature it checked, so a client that sends the same token with every request pays for
    the HMAC and the payload's decoding once; the expiry is checked against the clock on
    every call, remembered or not, and only tokens that verified are remembered.
    """

    __slots__ = ("_clock", "_serializer", "_verified")

    def __init__(
        self,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = secret_keys_from(secret_key)
        # itsdangerous signs with its *last* key and verifies with all of them.
        self._serializer: URLSafeSerializer = URLSafeSerializer(
            list(reversed(keys)),
            salt=_SALT,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
        )
        self._clock = clock
        self._verified: LRUCache[str, Principal] = LRUCache(VERIFIED_CACHE_SIZE)

    def __repr__(self) -> str:
        return "TokenSigner(<keys hidden>)"

    def issue(self, user_id: str, *, admin: bool = False, expires_in: float | None = None,
              token_id: str | None = None) -> str:
        """A token for ``user_id`` (scope ``user``, plus ``admin`` if asked).

        Args:
            user_id: The user; 1 to 256 characters, no control characters.
            admin: Add the ``admin`` scope.
            expires_in: Seconds until the token expires; None for a token that does not.
            token_id: An id to revoke the token by (``new_token_id()``), recorded by the
                caller; None for a token that can only be refused by rotating the key.

        Raises:
            ValueError: ``user_id``, ``expires_in`` or ``token_id`` is unusable.
        """
        check_user_id(user_id)
        payload: dict[str, Any] = {
            "sub": user_id,
            "scp": [USER_SCOPE, ADMIN_SCOPE] if admin else [USER_SCOPE],
        }
        if token_id is not None:
            if not isinstance(token_id, str) or _TOKEN_ID.fullmatch(token_id) is None:
                raise ValueError(f"token_id must be 1 to 64 of [A-Za-z0-9_-], got {token_id!r}")
            payload["jti"] = token_id
        if expires_in is not None:
            if isinstance(expires_in, bool) or not expires_in > 0:
                raise ValueError(f"expires_in must be seconds > 0 or None, got {expires_in!r}")
            payload["exp"] = int(self._clock() + expires_in)
        token: str = self._serializer.dumps(payload)
        return token

    def verify(self, token: str) -> Principal:
        """The principal ``token`` speaks for.

        Raises:
            MalformedTokenError: not shaped like a beamish token, or an unreadable payload.
            BadTokenSignatureError: the signature does not match under any key.
            TokenExpiredError: the token carries an expiry in the past.
        """
        known = self._verified.get(token) if isinstance(token, str) else None
        if known is not None:
            if known.expires_at is not None and self._clock() >= known.expires_at:
                raise TokenExpiredError(known.expires_at)
            return known
        if not isinstance(token, str) or not token:
            raise MalformedTokenError("the token is empty")
        if len(token) > MAX_TOKEN_LENGTH:
            raise MalformedTokenError(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
        if _TOKEN_SHAPE.fullmatch(token) is None:
            raise MalformedTokenError("a token is two base64url parts joined by '.'")
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            # itsdangerous' messages quote the signature: never let them reach a log.
            raise BadTokenSignatureError() from None
        except BadData:
            raise MalformedTokenError("the payload cannot be decoded") from None
        principal = self._principal(payload)
        self._verified[token] = principal
        return principal

    def _principal(self, payload: object) -> Principal:
        if not isinstance(payload, dict):
            raise MalformedTokenError("the payload is not a JSON object")
        user_id, scopes, expires = payload.get("sub"), payload.get("scp"), payload.get("exp")
        token_id = payload.get("jti")
        if token_id is not None and (not isinstance(token_id, str)
                                     or _TOKEN_ID.fullmatch(token_id) is None):
            raise MalformedTokenError("the payload's token id is not an id")
        if not isinstance(user_id, str) or not user_id:
            raise MalformedTokenError("the payload names no user")
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= SCOPES:
            raise MalformedTokenError("the payload's scopes are not a subset of user, admin")
        if expires is not None:
            if isinstance(expires, bool) or not isinstance(expires, int | float):
                raise MalformedTokenError("the payload's expiry is not a number")
            if self._clock() >= expires:
                raise TokenExpiredError(float(expires))
        return Principal(user_id, frozenset(scopes), None if expires is None else float(expires),
                         token_id)


def check_user_id(user_id: object) -> None:
    """Raise ValueError unless ``user_id`` is 1 to 256 printable characters."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise ValueError(f"user_id is longer than {MAX_USER_ID_LENGTH} characters")
    if not user_id.isprintable():
        raise ValueError(f"user_id {user_id!r} contains control characters")


def issue_token(
    user_id: str,
    admin: bool = False,
    *,
    expires_in: float | None = None,
    secret_key: str | bytes | Sequence[str | bytes] | None = None,
) -> str:
    """A signed token for ``user_id``, keyed from ``secret_key`` or ``BEAMISH_SECRET_KEY``.

    Raises:
        SigningKeyError: no usable key.
        ValueError: ``user_id`` or ``expires_in`` is unusable.
    """
    return TokenSigner(secret_key).issue(user_id, admin=admin, expires_in=expires_in)


def verify_token(
    token: str, *, secret_key: str | bytes | Sequence[str | bytes] | None = None
) -> Principal:
    """The :class:`Principal` of ``token``, keyed from ``secret_key`` or ``BEAMISH_SECRET_KEY``.

    Build one :class:`TokenSigner` and call :meth:`TokenSigner.verify` where tokens are checked
    often: this function derives the key on every call.

    Raises:
        SigningKeyError: no usable key.
        AuthError: the token is malformed, badly signed or expired (see :class:`TokenSigner`).
    """
    return TokenSigner(secret_key).verify(token)


# --- authenticating a connection ---------------------------------------------------------


class Authenticator(Protocol):
    """Turns what a client presented into a :class:`Principal`, or raises AuthError."""

    def __call__(self, token: str | None, params: Mapping[str, str]) -> Principal:
        """Authenticate a token (None if none was presented) and the connect params."""


class TokenAuthenticator:
    """Requires a valid user token; the default of the channels endpoint. With ``revoked``,
    a token whose id is in it is refused (:class:`TokenRevokedError`)."""

    __slots__ = ("revoked", "signer")

    def __init__(self, signer: TokenSigner | None = None, *,
                 revoked: RevocationList | None = None) -> None:
        self.signer = signer if signer is not None else TokenSigner()
        self.revoked = revoked

    def __call__(self, token: str | None, params: Mapping[str, str]) -> Principal:
        """The token's principal; :class:`MissingTokenError` without a token."""
        if token is None:
            raise MissingTokenError()
        principal = self.signer.verify(token)
        if (self.revoked is not None and principal.token_id is not None
                and principal.token_id in self.revoked):
            raise TokenRevokedError(principal.token_id)
        return principal


__all__ = [
    "ADMIN_SCOPE",
    "SCOPES",
    "SECRET_KEY_ENV",
    "USER_SCOPE",
    "Authenticator",
    "Principal",
    "RevocationList",
    "TokenAuthenticator",
    "TokenSigner",
    "check_user_id",
    "issue_token",
    "new_token_id",
    "secret_keys_from",
    "verify_token",
]
