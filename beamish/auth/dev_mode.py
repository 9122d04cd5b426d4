"""Dev mode: trust a ``user_id`` connect param instead of a token, on loopback servers only.

:class:`DevModeAuthenticator` trusts a ``user_id`` connect param, so anyone who can reach the
server can be anyone. It refuses to exist unless the server binds to a loopback address
(:func:`dev_mode_allowed`), and :func:`dev_mode_warning` is the banner to print at start.
A token, when one is given (and a signer set), is still verified.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

from beamish.auth.errors import DevModeError, MalformedTokenError, MissingTokenError
from beamish.auth.tokens import Principal, TokenSigner, check_user_id

LOOPBACK_NAMES: Final = frozenset({"localhost"})


def dev_mode_allowed(host: str) -> bool:
    """Whether a server bound to ``host`` may run in dev mode: loopback addresses only.

    ``0.0.0.0`` and ``::`` (every interface) are not loopback; neither is a hostname other
    than ``localhost``.
    """
    name = host.strip().lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def dev_mode_warning(host: str) -> str:
    """The banner to print (and log) when a server starts in dev mode on ``host``."""
    rule = "!" * 78
    return "\n".join((
        rule,
        "!!  beamish DEV MODE: AUTHENTICATION IS OFF",
        f"!!  Listening on {host}: any program on this machine may act as ANY user by",
        "!!  passing user_id=... — no token is checked for such requests.",
        "!!  Never use dev mode on a shared machine, nor behind a proxy that forwards",
        "!!  outside traffic to this address. Use tokens: beamish token create --user U",
        rule,
    ))


class DevModeAuthenticator:
    """Trusts a ``user_id`` connect param (scope ``user``); tokens, when given, still count.

    Raises:
        DevModeError: at construction, unless ``host`` is a loopback address.
    """

    __slots__ = ("host", "signer")

    def __init__(self, host: str, signer: TokenSigner | None = None) -> None:
        if not dev_mode_allowed(host):
            raise DevModeError(host)
        self.host = host
        self.signer = signer

    def __call__(self, token: str | None, params: Mapping[str, str]) -> Principal:
        """The token's principal if a token is given (and a signer set), else ``user_id``'s."""
        if token is not None and self.signer is not None:
            return self.signer.verify(token)
        user_id = params.get("user_id")
        if not user_id:
            raise MissingTokenError()
        try:
            check_user_id(user_id)
        except ValueError as exc:
            raise MalformedTokenError(f"dev mode user_id: {exc}") from None
        return Principal(user_id)


__all__ = ["LOOPBACK_NAMES", "DevModeAuthenticator", "dev_mode_allowed", "dev_mode_warning"]
