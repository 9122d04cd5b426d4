"""Our static files (``static/``: ES modules and CSS, no build step), served by name.

Only files that exist in the package, with a name of lower-case letters, digits, ``-`` and
``_`` and a known suffix, are served; each is read once, and sent with its content type, a
strong ETag (so a revalidation is a 304) and ``nosniff`` (the route adds it). Pages link
them as ``static/<name>?v=<version>``, the version a hash of the content.
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources
from typing import Final

from starlette.responses import Response

CONTENT_TYPES: Final = {"js": "text/javascript; charset=utf-8",
                        "css": "text/css; charset=utf-8",
                        "svg": "image/svg+xml"}
_NAME: Final = re.compile(r"[a-z0-9_-]{1,64}\.(js|css|svg)")


@functools.cache
def _file(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and ETag, or None when there is no such file."""
    if _NAME.fullmatch(name) is None:
        return None
    item = resources.files("beamish.web").joinpath("static", name)
    if not item.is_file():
        return None
    data = item.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def version(name: str) -> str:
    """A short hash of the file's content (empty for a missing file)."""
    found = _file(name)
    return "" if found is None else found[1].strip('"')[:12]


def response(name: str, if_none_match: str | None) -> Response:
    """The file (or 304, or 404)."""
    found = _file(name)
    if found is None:
        return Response("no such file\n", status_code=404, media_type="text/plain")
    data, etag = found
    headers = {"etag": etag, "cache-control": "public, max-age=3600"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    suffix = name.rsplit(".", 1)[1]
    return Response(data, headers={**headers, "content-type": CONTENT_TYPES[suffix]})


__all__ = ["CONTENT_TYPES", "response", "version"]
