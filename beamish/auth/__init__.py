"""Who a request or a socket speaks for: signed user tokens, authenticators, dev mode.

Neutral ground below both the channels and the HTTP API, which authenticate the same
tokens the same way:

* :mod:`.tokens` — :class:`Principal`, :class:`TokenSigner`, :func:`issue_token`,
  :func:`verify_token`, and the :class:`Authenticator` protocol with
  :class:`TokenAuthenticator` (what the channels endpoint uses by default).
* :mod:`.dev_mode` — :class:`DevModeAuthenticator`: trust a ``user_id`` param, loopback only.
* :mod:`.errors` — :class:`AuthError` (refuse the caller) and the key and dev-mode
  configuration errors, the tree in its docstring.

It depends on nothing else of beamish.
"""

from beamish.auth.dev_mode import DevModeAuthenticator, dev_mode_allowed, dev_mode_warning
from beamish.auth.errors import (
    AuthError,
    BadTokenSignatureError,
    BeamishAuthError,
    DevModeError,
    MalformedTokenError,
    MissingTokenError,
    SigningKeyError,
    TokenExpiredError,
    TokenRevokedError,
)
from beamish.auth.tokens import (
    ADMIN_SCOPE,
    SECRET_KEY_ENV,
    USER_SCOPE,
    Authenticator,
    Principal,
    RevocationList,
    TokenAuthenticator,
    TokenSigner,
    issue_token,
    verify_token,
)

__all__ = [
    "ADMIN_SCOPE", "SECRET_KEY_ENV", "USER_SCOPE", "AuthError", "Authenticator",
    "BadTokenSignatureError", "BeamishAuthError", "DevModeAuthenticator", "DevModeError",
    "MalformedTokenError", "MissingTokenError", "Principal", "RevocationList",
    "SigningKeyError", "TokenAuthenticator", "TokenExpiredError", "TokenRevokedError",
    "TokenSigner", "dev_mode_allowed",
    "dev_mode_warning", "issue_token", "verify_token",
]
