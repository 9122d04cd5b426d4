"""The one rule of a provider base URL the HTTP client can use, sans-I/O.

``httpx2.URL`` parses it (the parser both provider SDKs build on), its scheme is http or
https, it names a host, and a port, if given, is 1 to 65535. The HTTP API refuses other URLs
(422), the client's registry plans a stored row with one as broken, and config resolution
does not offer such a row: all three ask ``base_url_problem``, so they cannot disagree.
"""

from __future__ import annotations


def base_url_problem(url: str) -> str | None:
    """Why the HTTP client cannot use ``url`` as a provider's base URL, or None if it can."""
    # Imported here, as the SDKs are: loading it costs as much as the rest of beamish's
    # imports, and only a registered base URL needs it.
    import httpx2

    try:
        parsed = httpx2.URL(url)
        port = parsed.port
    except (httpx2.InvalidURL, ValueError) as error:
        # httpx2's message quotes the URL; say where the fault is without echoing it.
        return f"it is not a URL the HTTP client accepts ({_without(str(error), url)})"
    if parsed.scheme not in ("http", "https"):
        return "its scheme must be http or https"
    if not parsed.host:
        return "it names no host"
    if port is not None and not 0 < port < 65536:
        return "its port must be 1 to 65535"
    return None


def _without(message: str, url: str) -> str:
    return message.replace(repr(url), "the URL").replace(url, "the URL")


__all__ = ["base_url_problem"]
