"""Every exception ``beamish.auth`` raises.

The tree::

    BeamishAuthError
    ├── AuthError                   a request or socket cannot be authenticated: refuse it
    │   │                           (the WebSocket upgrade answers 403)
    │   ├── MissingTokenError       no token was presented
    │   ├── MalformedTokenError     the token is not a beamish user token at all
    │   ├── BadTokenSignatureError  the signature does not match: not issued with this
    │   │                           server's key, or altered
    │   ├── TokenExpiredError       the token is past its expiry
    │   └── TokenRevokedError       the token's id was revoked (`beamish token revoke`)
    ├── SigningKeyError             BEAMISH_SECRET_KEY is missing or too short to sign with
    │                               (also a ValueError: a configuration mistake)
    └── DevModeError                dev mode was asked for on an address other than loopback
                                    (also a ValueError)

Messages say what was wrong and what to do. None of them ever contains a token, a part of
one, or a key: they end up in logs and in HTTP 403 bodies.
"""

from __future__ import annotations

import datetime as dt

_NEW_TOKEN = "issue a new one with `beamish token create --user USER`"


class BeamishAuthError(Exception):
    """Base class of every error raised by ``beamish.auth``."""


# --- authentication -----------------------------------------------------------------------


class AuthError(BeamishAuthError):
    """The caller could not be authenticated; refuse the request or the upgrade."""


class MissingTokenError(AuthError):
    """No token was presented."""

    def __init__(self) -> None:
        super().__init__(
            "no token: pass a beamish user token as the `token` connect param, as the "
            "base64url.bearer.phx. subprotocol (phoenix JS `authToken`), or as "
            f"`Authorization: Bearer`; {_NEW_TOKEN}"
        )


class MalformedTokenError(AuthError):
    """The token is not shaped like a beamish user token, or its payload is unreadable."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"malformed token: {detail}; {_NEW_TOKEN}")


class BadTokenSignatureError(AuthError):
    """The signature does not match the payload under any of the server's keys."""

    def __init__(self) -> None:
        super().__init__(
            "bad token signature: the token was not issued with this server's "
            f"BEAMISH_SECRET_KEY, or it was altered; {_NEW_TOKEN}"
        )


class TokenExpiredError(AuthError):
    """The token carries an expiry that has passed.

    Attributes:
        expired_at: When it expired, in seconds since the Unix epoch.
    """

    def __init__(self, expired_at: float) -> None:
        self.expired_at = expired_at
        when = dt.datetime.fromtimestamp(expired_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(f"token expired at {when}; {_NEW_TOKEN}")


class TokenRevokedError(AuthError):
    """The token's id was revoked.

    Attributes:
        token_id: The revoked id (an id, not the token: safe to log).
    """

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"token {token_id!r} was revoked; {_NEW_TOKEN}")


# --- configuration ------------------------------------------------------------------------


class SigningKeyError(BeamishAuthError, ValueError):
    """The key to sign and verify user tokens is missing or unusable."""


class DevModeError(BeamishAuthError, ValueError):
    """Dev mode (trusting a ``user_id`` param) was asked for on a non-loopback address."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"dev mode trusts any client's user_id, so it only runs on a loopback address "
            f"(127.0.0.1, ::1, localhost), not {host!r}; bind to 127.0.0.1 or use tokens "
            "(`beamish token create --user USER`)"
        )
