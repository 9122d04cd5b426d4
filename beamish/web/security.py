"""What every page's response carries and what every state-changing request must show
(sans-I/O: plain functions of headers and strings, tested without a server).

* :data:`SECURITY_HEADERS` — a strict Content-Security-Policy (``default-src 'self'``: our
  own scripts, styles and images only; no inline script or style; ``frame-ancestors
  'none'``; ``form-action 'self'``; ``base-uri 'none'``), ``X-Content-Type-Options:
  nosniff``, ``Referrer-Policy: same-origin`` (a sign-in link's code never leaves in a
  Referer) and ``X-Frame-Options: DENY`` for browsers without CSP 2.
* :func:`same_origin` — the CSRF check beside the SameSite=Strict cookie: a state-changing
  request (anything but GET, HEAD and OPTIONS) must name this site in ``Origin``, or, when a
  browser sends none, in ``Referer``; a request with neither is refused too.
* :func:`safe_next` — where to go after signing in: a path on this site under the app's
  base, never another host (``//evil``, ``/\\evil``, ``https://...``), else the base itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
              "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'")

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

MAX_NEXT_LENGTH: Final = 2048


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-cased; None when it has no host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(method: str, headers: Mapping[str, str], site: str) -> bool:
    """Whether a request may change state: a safe method, or ``Origin`` (else ``Referer``)
    naming ``site`` (``scheme://host[:port]`` as the request reached us)."""
    if method.upper() in SAFE_METHODS:
        return True
    expected = site.lower()
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        return origin.lower() == expected
    referer = headers.get("referer")
    return referer is not None and _origin_of(referer) == expected


def safe_next(target: str | None, base: str) -> str:
    """``target`` if it is a path on this site under ``base`` (which ends in ``/``), else
    ``base``."""
    if not target or len(target) > MAX_NEXT_LENGTH or not target.startswith(base):
        return base
    if target.startswith(("//", "/\\")) or "\\" in target or any(
            ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return base
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return base
    return target


__all__ = ["CSP", "SAFE_METHODS", "SECURITY_HEADERS", "safe_next", "same_origin"]
