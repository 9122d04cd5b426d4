"""Which WebSocket protocol uvicorn serves beamish's sockets with, and the check that guards it.

``LeanWebSocketProtocol`` (:mod:`beamish.server.websocket_protocol`) is beamish's one
adapter into a dependency's WebSocket internals: it subclasses uvicorn's sans-I/O protocol
(``uvicorn.protocols.websockets.websockets_sansio_impl``, private to uvicorn) and writes
frames into the websockets connection's output buffer (``Protocol.writes``, undocumented).
Neither promises to stay as it is, so :func:`websocket_protocol` hands it to uvicorn only
when the installed releases are ones it was verified with, ``[lowest, below)``:

* uvicorn: ``VERIFIED_UVICORN`` (pyproject.toml bounds uvicorn below the same release);
* websockets: ``VERIFIED_WEBSOCKETS`` (likewise).

Otherwise it logs a warning once and answers ``"auto"``: uvicorn's public choice of its own,
stock WebSocket protocol. Everything still works then — the channels see no
``send_nowait``/``deliver`` scope extension and use the plain ASGI ``send`` and
``receive`` (:mod:`beamish.channels.endpoint`) — with more memory per idle socket and one
woken task per received message. A test fails when the installed releases leave these
ranges, so an upgrade forces a re-check of the subclass against the new uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Literal

from beamish import _versions

log = logging.getLogger("beamish.server")

VERIFIED_UVICORN: Final = ((0, 55), (0, 56))
"""The uvicorn releases ``[from, below)`` LeanWebSocketProtocol was verified with."""
VERIFIED_WEBSOCKETS: Final = ((17, 4), (17, 5))
"""The websockets releases ``[from, below)`` LeanWebSocketProtocol was verified with."""
STOCK: Final = "auto"
"""uvicorn's own WebSocket protocol, as its public ``ws=`` option names it."""


def unverified() -> list[str]:
    """The installed dependencies outside their verified range, as "name version"."""
    checks = (("uvicorn", VERIFIED_UVICORN), ("websockets", VERIFIED_WEBSOCKETS))
    return [f"{name} {_versions.installed(name) or '(none)'}" for name, bounds in checks
            if not _versions.verified(_versions.installed(name), *bounds)]


def websocket_protocol() -> type[asyncio.Protocol] | Literal["auto"]:
    """``uvicorn.Config(ws=...)`` for beamish: ``LeanWebSocketProtocol`` with verified
    releases of uvicorn and websockets, else ``"auto"`` (warned of once)."""
    outside = unverified()
    if not outside:
        # Imported only now: an unverified uvicorn may not have the module it subclasses.
        from beamish.server.websocket_protocol import LeanWebSocketProtocol

        return LeanWebSocketProtocol
    _versions.warn_once(log, (
        f"{' and '.join(outside)}: not the releases beamish's lean WebSocket protocol was "
        f"verified with (uvicorn {_range(VERIFIED_UVICORN)}, websockets "
        f"{_range(VERIFIED_WEBSOCKETS)}); serving sockets with uvicorn's stock protocol"))
    return STOCK


def _range(bounds: tuple[_versions.Release, _versions.Release]) -> str:
    lowest, below = (".".join(map(str, bound)) for bound in bounds)
    return f">={lowest},<{below}"


__all__ = ["STOCK", "VERIFIED_UVICORN", "VERIFIED_WEBSOCKETS", "unverified",
           "websocket_protocol"]
