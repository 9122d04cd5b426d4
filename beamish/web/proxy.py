"""The pages' way to the HTTP API: ``<base>/web-api/users/...`` and ``.../web-api/llm/...``.

A page's script cannot read the session cookie (HttpOnly), so it cannot send the API a
bearer token. It calls these paths instead, same-origin with the cookie; each request is
passed to the host app's own ``/api/...`` route in-process, with the cookie's token as the
``Authorization`` header (in dev mode, the dev user as ``user_id``), and the API's answer —
its status, its validation messages, its error shape — comes back unchanged. The API does
all of the checking (a user reaches only their own data); the web app adds its Origin check
for every state-changing request before anything is passed on. Only the users', the LLM
config and the conversations' routes are reachable this way, and for an admin principal
(checked here, from the cookie, before forwarding) the admin API's ``/api/admin/...`` too: the
pages need nothing else.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response
from starlette.types import Message

from beamish.web.cookie import COOKIE, DEV_COOKIE, DEV_USER
from beamish.web.errors import ProxyRefusedError

ALLOWED_PREFIXES: Final = ("users/", "llm/", "conversations")
ADMIN_PREFIX: Final = "admin/"
"""Reachable for admin principals only (the admin console's scripts); a non-admin's call is
refused here with a 403, before the API sees it."""
MAX_BODY_BYTES: Final = 64 * 1024
_DROPPED: Final = frozenset({b"cookie", b"authorization", b"content-length", b"host"})


async def forward(request: Request, path: str, *, admin: bool = False) -> Response:
    """The API's answer to this request, sent as ``/api/<path>`` with the cookie's token;
    ``admin``: whether the cookie's principal is an admin (else ``admin/...`` is a 403)."""
    if path.startswith(ADMIN_PREFIX) and ".." not in path:
        if not admin:
            raise ProxyRefusedError(403, "the admin API is for admin principals only; "
                                    "sign in with an admin token")
    elif not path.startswith(ALLOWED_PREFIXES) or ".." in path:
        raise ProxyRefusedError(404, "the web app reaches only /api/users/..., /api/llm/... "
                                f"and /api/conversations..., not /api/{path}")
    body = await _body(request)
    token = request.cookies.get(COOKIE, "")
    query = request.url.query
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in _DROPPED]
    headers.append((b"host", request.headers.get("host", "localhost").encode("latin-1")))
    if token == DEV_COOKIE:
        query = "&".join(q for q in (query, urlencode({"user_id": DEV_USER})) if q)
    elif token:
        headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode()))
    target = f"/api/{path}"
    scope: dict[str, Any] = {
        "type": "http", "asgi": request.scope.get("asgi", {"version": "3.0"}),
        "http_version": request.scope.get("http_version", "1.1"), "method": request.method,
        "scheme": request.url.scheme, "server": request.scope.get("server"),
        "client": request.scope.get("client"), "root_path": "", "path": target,
        "raw_path": target.encode(), "query_string": query.encode("latin-1"),
        "headers": headers, "state": {},
    }
    return await _call(request, scope, body)


async def _body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProxyRefusedError(413, f"a request body through the web app is at most "
                                  f"{MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _call(request: Request, scope: dict[str, Any], body: bytes) -> Response:
    sent = False
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    parts: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await request.app(scope, receive, send)
    response = Response(b"".join(parts), status_code=status)
    for name, value in headers:
        if name.lower() == b"content-type":
            response.headers["content-type"] = value.decode("latin-1")
    return response


__all__ = ["ADMIN_PREFIX", "ALLOWED_PREFIXES", "MAX_BODY_BYTES", "forward"]
