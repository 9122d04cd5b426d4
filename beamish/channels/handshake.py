"""What the WebSocket upgrade request tells the server, read without I/O.

The phoenix JS client connects to ``{endpoint}/websocket?{params}&vsn=2.0.0``. It passes a
token in one of two ways:

- ``new Socket(url, {params: {token}})`` puts it in the query string: ``?token=abc&vsn=2.0.0``.
- ``new Socket(url, {authToken})`` (phoenix 1.8) offers two subprotocols,
  ``["phoenix", "base64url.bearer.phx.<encoded token>"]``, keeping the token out of URLs and
  access logs. The server must then select ``"phoenix"``; a client that offers no subprotocol
  must get none back (:func:`select_subprotocol`).

Despite its name, the JS client encodes that token with ``btoa`` — *standard* base64 with the
``=`` padding removed — and Phoenix decodes it that way. :func:`token_from_subprotocols`
accepts the standard and the URL-safe alphabet, padded or not, so other clients work too.
The decoded bytes are read as UTF-8; ``btoa`` writes a string's Latin-1 bytes, which agree
with UTF-8 for the ASCII tokens beamish issues.

Anything wrong here refuses the upgrade: Phoenix answers it with HTTP 403, and so should the
adapter on any :class:`~beamish.channels.errors.HandshakeError`.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from beamish.channels.errors import AuthTokenError, HandshakeError, UnsupportedVersionError

PHOENIX_SUBPROTOCOL: Final = "phoenix"
AUTH_TOKEN_PREFIX: Final = "base64url.bearer.phx."
#: The version Phoenix assumes when the query has no ``vsn``: V1, which beamish does not speak.
DEFAULT_VSN: Final = "1.0.0"
MAX_QUERY_PARAMS: Final = 256
#: The connect params stay with the socket for its life (every channel sees them): bounded.
MAX_QUERY_BYTES: Final = 8 * 1024

_VSN = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_URLSAFE_TO_STANDARD: Final = str.maketrans("-_", "+/")


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """The parts of an upgrade request the socket needs.

    Attributes:
        params: Every query parameter, the last value winning; nested names such as
            ``user[id]`` are kept as written.
        vsn: The protocol version asked for (always a 2.0.x: others are refused).
        token: The bearer subprotocol's token if offered, else the ``token`` parameter, else
            None.
        subprotocol: The subprotocol to select in the handshake response, or None.
    """

    params: Mapping[str, str]
    vsn: str
    token: str | None
    subprotocol: str | None


def read_connect_request(query: str, offered_subprotocols: Sequence[str]) -> ConnectRequest:
    """Read the query string (without ``?``) and the offered subprotocols of an upgrade.

    Raises:
        UnsupportedVersionError: ``vsn`` is missing (V1) or not 2.0.x.
        AuthTokenError: the bearer subprotocol's token cannot be decoded.
        HandshakeError: the query string has more than 256 parameters or 8 KiB.
    """
    params = parse_query(query)
    vsn = check_vsn(params.get("vsn"))
    token = token_from_subprotocols(offered_subprotocols)
    if token is None:
        token = params.get("token") or None
    return ConnectRequest(params, vsn, token, select_subprotocol(offered_subprotocols))


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """``"phoenix"`` when the client offers it, else None (select no subprotocol)."""
    return PHOENIX_SUBPROTOCOL if PHOENIX_SUBPROTOCOL in offered else None


def token_from_subprotocols(offered: Sequence[str]) -> str | None:
    """The token in a ``base64url.bearer.phx.<encoded>`` subprotocol, or None if none is offered.

    Raises:
        AuthTokenError: the encoded part is empty, not base64, or not UTF-8 once decoded.
    """
    for protocol in offered:
        if protocol.startswith(AUTH_TOKEN_PREFIX):
            return _decode_token(protocol.removeprefix(AUTH_TOKEN_PREFIX))
    return None


def _decode_token(encoded: str) -> str:
    unpadded = encoded.rstrip("=").translate(_URLSAFE_TO_STANDARD)
    if not unpadded:
        raise AuthTokenError(
            f"the {AUTH_TOKEN_PREFIX} subprotocol carries no token; put the base64 of the "
            "token after the prefix, as the phoenix JS client's authToken option does"
        )
    try:
        raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthTokenError(
            f"the {AUTH_TOKEN_PREFIX} subprotocol's token is not the base64 of a UTF-8 "
            "string; encode it as the phoenix JS client does: btoa(token) without '='"
        ) from None


def parse_query(query: str) -> dict[str, str]:
    """Decode a query string into a dict, the last value of a repeated name winning.

    Raises:
        HandshakeError: more than 256 parameters, or more than 8 KiB.
    """
    if len(query) > MAX_QUERY_BYTES:
        raise HandshakeError(
            f"the query string is {len(query)} bytes; at most {MAX_QUERY_BYTES} are allowed: "
            "pass fewer or shorter connect params"
        )
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, max_num_fields=MAX_QUERY_PARAMS
        )
    except ValueError:
        raise HandshakeError(
            f"the query string has more than {MAX_QUERY_PARAMS} parameters; pass fewer "
            "connect params"
        ) from None
    return dict(pairs)


def check_vsn(vsn: str | None) -> str:
    """Return ``vsn`` if it is a 2.0.x version (what ``"~> 2.0.0"`` matches in Phoenix).

    Raises:
        UnsupportedVersionError: anything else, including a missing ``vsn`` (Phoenix reads
            that as 1.0.0, the V1 object format).
    """
    version = DEFAULT_VSN if vsn is None else vsn
    match = _VSN.fullmatch(version)
    if match is None or (int(match[1]), int(match[2])) != (2, 0):
        raise UnsupportedVersionError(version)
    return version
