"""What every endpoint depends on: the running ``Application`` and the caller's ``Principal``.

**The runtime** is ``request.app.state.beamish``, put there by ``beamish.lifespan()`` (or by
``create_app(runtime=...)``). Without it every endpoint but ``/health`` answers 503.

**The caller** is read from ``Authorization: Bearer <token>`` — a beamish user token
(``beamish token create --user U [--admin]``), verified with the key of
``BEAMISH_SECRET_KEY`` (or ``Settings.secret_key``). The ``ApiAuth`` on
``app.state.beamish_api_auth`` decides how; without one, token auth keyed from the running
runtime's settings is built on first use, so a host app that includes ``api_router()``
needs nothing more.

**Dev mode** (``ApiAuth.dev_mode(host)``) also trusts a ``user_id`` query parameter from
callers without a token, as scope ``user`` (never admin). It can only be built for a
loopback ``host`` (``DevModeError`` otherwise), and each request trusted that way must also
have reached the server on a loopback address, so a server re-bound to a public address
refuses it even if started in dev mode.

**Access.** ``check_user(principal, user_id)`` is the "own data, or admin" rule (403
otherwise); ``AdminPrincipal`` is a dependency that admits only the ``admin`` scope.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from beamish.application import Application
from beamish.auth import (
    SECRET_KEY_ENV,
    Authenticator,
    AuthError,
    DevModeAuthenticator,
    MalformedTokenError,
    Principal,
    RevocationList,
    TokenAuthenticator,
    TokenSigner,
    dev_mode_allowed,
)
from beamish.server.api.errors import ForbiddenError
from beamish.sessions.errors import RuntimeNotRunningError
from beamish.settings import Settings

AUTH_STATE = "beamish_api_auth"
"""The ``app.state`` attribute holding the app's ``ApiAuth``."""

USER_SCOPE_KEY = "beamish.user_id"
"""The ASGI scope key where authentication leaves the caller's user id (the access log)."""

_NO_RUNTIME = ("the beamish runtime is not running: serve the API with create_app(...), or "
               "give the host app lifespan=beamish.lifespan()")

_bearer = HTTPBearer(auto_error=False, description="a beamish user token "
                     "(`beamish token create --user U`)")


@dataclass(frozen=True, slots=True)
class ApiAuth:
    """How the API authenticates callers.

    Attributes:
        authenticator: turns a bearer token (None without one) and the query parameters
            into a principal, or raises ``AuthError``.
        dev_mode: whether callers without a token may name themselves with ``user_id``.
    """

    authenticator: Authenticator
    dev_mode: bool = False

    @classmethod
    def tokens(cls, settings: Settings | None = None, *,
               revoked: RevocationList | None = None) -> ApiAuth:
        """Token auth keyed by ``settings.secret_key``, else ``BEAMISH_SECRET_KEY``; tokens
        whose id is in ``revoked`` are refused.

        Raises:
            SigningKeyError: no usable key.
        """
        return cls(TokenAuthenticator(TokenSigner(_secret(settings)), revoked=revoked))

    @classmethod
    def development(cls, host: str, settings: Settings | None = None) -> ApiAuth:
        """Dev mode for a server bound to ``host``; tokens still count when a key is set.

        Raises:
            DevModeError: ``host`` is not a loopback address.
        """
        secret = _secret(settings)
        signer = TokenSigner(secret) if secret or os.environ.get(SECRET_KEY_ENV) else None
        return cls(DevModeAuthenticator(host, signer), dev_mode=True)


def _secret(settings: Settings | None) -> str | None:
    if settings is not None and settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return None


# --- the runtime -------------------------------------------------------------------------


def get_runtime(request: Request) -> Application:
    """The app's running ``Application``; 503 when there is none."""
    runtime: Application | None = getattr(request.app.state, "beamish", None)
    if runtime is None:
        raise RuntimeNotRunningError(_NO_RUNTIME)
    try:
        runtime.services  # noqa: B018 - raises when the runtime is stopped
    except RuntimeError:
        raise RuntimeNotRunningError(_NO_RUNTIME) from None
    return runtime


def get_auth(request: Request) -> ApiAuth:
    """The app's ``ApiAuth``, built from the runtime's settings on first use."""
    auth: ApiAuth | None = getattr(request.app.state, AUTH_STATE, None)
    if auth is None:
        auth = ApiAuth.tokens(get_runtime(request).settings)
        setattr(request.app.state, AUTH_STATE, auth)
    return auth


# --- the caller --------------------------------------------------------------------------


def authenticate(request: Request, auth: ApiAuth,
                 credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The principal of a request: its bearer token, or (dev mode) its ``user_id``."""
    header = request.headers.get("authorization")
    if header is not None and credentials is None:
        raise MalformedTokenError("the Authorization header is not 'Bearer <token>'")
    token = None if credentials is None else credentials.credentials
    if token is None and auth.dev_mode and not _reached_on_loopback(request):
        raise AuthError("dev mode trusts user_id only on a loopback address, and this "
                        "request did not arrive on one; pass a token")
    principal = auth.authenticator(token, request.query_params)
    request.scope[USER_SCOPE_KEY] = principal.user_id
    return principal


def _reached_on_loopback(request: Request) -> bool:
    server = request.scope.get("server")
    return server is None or dev_mode_allowed(str(server[0]))


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 without a valid token."""
    return authenticate(request, get_auth(request), credentials)


async def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The caller, who must hold the ``admin`` scope (403 otherwise)."""
    if not principal.is_admin:
        raise ForbiddenError(
            f"user {principal.user_id!r} is not an admin; this endpoint needs a token with "
            "the admin scope (`beamish token create --user U --admin`)")
    return principal


def check_user(principal: Principal, user_id: str) -> None:
    """Raise 403 unless ``principal`` may reach ``user_id``'s data (its own, or as admin)."""
    if not principal.can_act_for(user_id):
        raise ForbiddenError(
            f"user {principal.user_id!r} may not reach the data of user {user_id!r}; a token "
            "reaches its own user's data only, unless it has the admin scope")


async def _runtime_dependency(request: Request) -> Application:
    # A coroutine, so FastAPI calls it on the loop: a plain ``def`` dependency is run in a
    # worker thread, a hop through the thread pool on every request.
    return get_runtime(request)


AppDep = Annotated[Application, Depends(_runtime_dependency)]
"""The running ``Application`` of the app."""

CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
"""The authenticated caller."""

AdminPrincipal = Annotated[Principal, Depends(get_admin)]
"""The authenticated caller, an admin."""


__all__ = [
    "AUTH_STATE", "USER_SCOPE_KEY", "AdminPrincipal", "ApiAuth", "CurrentPrincipal", "AppDep",
    "authenticate", "check_user", "get_admin", "get_auth", "get_principal", "get_runtime",
]
