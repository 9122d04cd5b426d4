"""The web app's routes: :func:`router` builds them, for a host app to mount under any prefix.

Every link a page holds is built from the route names (``request.url_for``), so the app
works under ``/`` (``beamish serve``) or any prefix a host app gives ``include_router``.
Every response carries the security headers (``security.SECURITY_HEADERS``), and every
state-changing request must come from a page of this site (``security.same_origin``), else
it gets a 403 page: the route class, :class:`WebRoute`, does both for every route.

Pages: ``/`` chat (the user's conversations, one of them open), ``/settings`` (the user's
LLM configuration and what each task type resolves to), ``/sign-in`` (paste a token; in
dev mode on loopback, continue as the dev user), ``/sign-in/link?code=`` (confirm a
one-time link, then ``POST`` uses it), ``POST /sign-out``. For the pages' scripts:
``POST /socket-token`` (a short-lived token for the conversation socket: the cookie's own
token never reaches a script), ``/web-api/users/...`` and ``/web-api/llm/...`` (the HTTP
API's ``/api/...`` with the cookie's token, ``proxy``; ``/web-api/admin/...`` for admin
principals only), ``/static/<file>`` (our modules, CSS). The usage page (``/usage``) and the
admin console (``/admin/...``) live in their own modules, :mod:`.usage` and :mod:`.admin`,
as do the outputs pages (``/outputs...``), :mod:`.outputs`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final, get_args
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from beamish.application import Application
from beamish.auth import Principal, TokenSigner
from beamish.auth.tokens import new_token_id
from beamish.chat import ConversationHistory
from beamish.server.api.deps import get_auth, get_runtime
from beamish.server.mount import CONVERSATIONS_STATE
from beamish.store import Provider
from beamish.web import assets
from beamish.web.chat import chat_context, newest_conversation
from beamish.web.cookie import (
    COOKIE,
    DEV_COOKIE,
    SESSION_LIFETIME_S,
    clear_cookie,
    dev_mode_here,
    set_cookie,
    signed_in,
    verify,
)
from beamish.web.errors import FormTooLargeError, ProxyRefusedError, SignInLinkError
from beamish.web.links import SignInLinks
from beamish.web.proxy import forward
from beamish.web.security import SECURITY_HEADERS, safe_next, same_origin

SOCKET_TOKEN_LIFETIME_S: Final = 120
"""How long a socket token may be used to connect (each connect asks for a new one)."""

MAX_FORM_BYTES: Final = 16 * 1024
_CONVERSATION_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")

_templates = Environment(loader=PackageLoader("beamish.web", "templates"), autoescape=True,
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class WebRoute(APIRoute):
    """A route of the web app: the Origin check before, the security headers after."""

    def get_route_handler(self) -> Endpoint:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if not same_origin(request.method, request.headers, _site(request)):
                response: Response = error_page(
                    request, 403, "This request did not come from a page of this site, so "
                    "it was refused. Reload the page and try again.")
            else:
                try:
                    response = await handler(request)
                except FormTooLargeError as error:
                    response = error_page(request, 413, str(error))
            response.headers.update(SECURITY_HEADERS)
            return response

        return guarded


def _site(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def base_path(request: Request) -> str:
    """The app's root path, ending in ``/`` (``/`` itself, or the host's prefix)."""
    return str(request.url_for("web_chat").path)


def render(request: Request, template: str, *, status: int = 200,
           principal: Principal | None = None, **context: Any) -> HTMLResponse:
    """A page from ``template``, with what every page needs."""

    def url(route: str, **params: str) -> str:
        return str(request.url_for(route, **params).path)

    def static(name: str) -> str:
        return url("web_static", name=name) + "?v=" + assets.version(name)

    html = _templates.get_template(template).render(
        url=url, static=static,
        principal=principal, dev_mode=dev_mode_here(request), **context)
    return HTMLResponse(html, status_code=status,
                        headers={"cache-control": "no-store"})


def error_page(request: Request, status: int, message: str,
               principal: Principal | None = None) -> HTMLResponse:
    """A page saying what went wrong."""
    return render(request, "error.html", status=status, principal=principal, page="error",
                  status_code=status, message=message)


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = urlencode({"next": target})
    return RedirectResponse(f"{request.url_for('web_sign_in').path}?{query}", status_code=303)


MAX_FORM_FIELDS = 16
"""Fields a form of the sign-in and settings pages may carry."""


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each), bounded."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLargeError(f"a form of this site is at most {MAX_FORM_BYTES} bytes; "
                                    "a token is far shorter: paste only the token")
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs's own refusal of too many fields
        raise FormTooLargeError(f"a form of this site has at most {MAX_FORM_FIELDS} fields"
                                ) from None
    return {name: values[0] for name, values in fields.items()}


def _runtime(request: Request) -> Application:
    return get_runtime(request)


def _history(request: Request) -> ConversationHistory | None:
    history: ConversationHistory | None = getattr(request.app.state, CONVERSATIONS_STATE, None)
    return history


def _links(runtime: Application) -> SignInLinks:
    secret = runtime.settings.secret_key
    return SignInLinks(None if secret is None else secret.get_secret_value())


def _signer(request: Request) -> TokenSigner | None:
    signer = getattr(get_auth(request).authenticator, "signer", None)
    return signer if isinstance(signer, TokenSigner) else None


# --- pages -------------------------------------------------------------------------------


async def chat_page(request: Request) -> Response:
    """The user's conversations, one of them open (``?c=``; the newest, or a new one), read
    from the store (``beamish.web.chat``)."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    chosen = request.query_params.get("c")
    if chosen is not None and _CONVERSATION_ID.fullmatch(chosen) is None:
        return error_page(request, 400, "A conversation id is 1 to 128 letters, digits and "
                          "_.:@-, starting with a letter or digit.", principal)
    runtime, history = _runtime(request), _history(request)
    if chosen is None:
        chosen = (await newest_conversation(runtime, history, principal.user_id)
                  or _new_conversation_id())
    context = await chat_context(runtime, history, principal.user_id, chosen)
    return render(request, "chat.html", principal=principal, page="chat",
                  conversation_id=chosen, new_conversation=_new_conversation_id(),
                  socket_path=_socket_path(request), **context)


def _new_conversation_id() -> str:
    return "c-" + secrets.token_hex(6)


def _socket_path(request: Request) -> str:
    path: str = request.scope.get("beamish.web.socket_path", "/socket/websocket")
    return path


async def settings_page(request: Request) -> Response:
    """The user's LLM settings and the live preview beside them (the script fills both)."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    runtime = _runtime(request)
    task_types = sorted({"chat", *runtime.settings.llm.task_types})
    return render(request, "settings.html", principal=principal, page="settings",
                  task_types=task_types, providers=list(get_args(Provider)))


async def sign_in_page(request: Request) -> Response:
    """The sign-in form (and, in dev mode on loopback, the dev user's button)."""
    target = safe_next(request.query_params.get("next"), base_path(request))
    return render(request, "sign_in.html", page="sign-in", next=target, error=None)


async def sign_in(request: Request) -> Response:
    """Verify a pasted token; on success it becomes the session cookie."""
    form = await _form(request)
    base = base_path(request)
    target = safe_next(form.get("next"), base)
    token = form.get("token", "").strip()
    principal = verify(get_auth(request), token) if token else None
    if principal is None:
        return render(request, "sign_in.html", status=401, page="sign-in", next=target,
                      error="That token was not accepted: it is malformed, expired, revoked "
                            "or signed with another key. Make one with: beamish token create "
                            "--user YOU")
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, token, base=base, max_age=_cookie_age(principal))
    return response


def _cookie_age(principal: Principal) -> int:
    if principal.expires_at is None:
        return SESSION_LIFETIME_S
    return min(SESSION_LIFETIME_S, int(principal.expires_at - time.time()))


async def sign_in_dev(request: Request) -> Response:
    """Dev mode on loopback only: sign in as the dev user."""
    form = await _form(request)
    base = base_path(request)
    if not dev_mode_here(request):
        return error_page(request, 403, "Signing in without a token needs dev mode "
                          "(beamish serve --dev) and a loopback address.")
    response = RedirectResponse(safe_next(form.get("next"), base), status_code=303)
    set_cookie(response, request, DEV_COOKIE, base=base)
    return response


async def sign_in_link_page(request: Request) -> Response:
    """A link's landing page: who it signs in, and a button that uses it (a GET never uses
    it, so a mail scanner that fetches links does not spend it)."""
    code = request.query_params.get("code", "")
    try:
        link = _links(_runtime(request)).verify(code)
    except (SignInLinkError, ValueError) as error:
        return error_page(request, 400, str(error))
    return render(request, "sign_in_link.html", page="sign-in", code=code, link=link)


async def sign_in_link(request: Request) -> Response:
    """Use a link: its code is consumed (once), and a session token is issued."""
    form = await _form(request)
    runtime = _runtime(request)
    signer = _signer(request)
    try:
        link = _links(runtime).verify(form.get("code", ""))
    except (SignInLinkError, ValueError) as error:
        return error_page(request, 400, str(error))
    if signer is None:
        return error_page(request, 503, "This server verifies no tokens (no key is set), "
                          "so it cannot sign anyone in by link.")
    used = await runtime.store.consume_token(link.code_id)
    if used is None:
        return error_page(request, 400, "This sign-in link was used already (or revoked). "
                          "Ask for a new one: beamish token create --user YOU --link")
    token_id = new_token_id()
    token = signer.issue(link.user_id, admin=link.admin, expires_in=SESSION_LIFETIME_S,
                         token_id=token_id)
    await runtime.store.record_token(
        token_id, link.user_id, admin=link.admin,
        expires_at=datetime.fromtimestamp(time.time() + SESSION_LIFETIME_S, UTC))
    base = base_path(request)
    response = RedirectResponse(base, status_code=303)
    set_cookie(response, request, token, base=base)
    return response


async def sign_out(request: Request) -> Response:
    """Clear the cookie; back to the sign-in page."""
    base = base_path(request)
    response = RedirectResponse(str(request.url_for("web_sign_in").path), status_code=303)
    clear_cookie(response, request, base=base)
    return response


# --- for the pages' scripts --------------------------------------------------------------


async def socket_token(request: Request) -> Response:
    """What the page's socket connects with: a short-lived token of the user's own scope
    (revoked with the cookie's token), or in dev mode the dev user's id."""
    principal = signed_in(request)
    if principal is None:
        return _json_error(401, "unauthorized", "not signed in; sign in again")
    if request.cookies.get(COOKIE) == DEV_COOKIE:
        return JSONResponse({"user_id": principal.user_id})
    signer = _signer(request)
    if signer is None:
        return _json_error(503, "unavailable", "this server issues no socket tokens")
    token = signer.issue(principal.user_id, expires_in=SOCKET_TOKEN_LIFETIME_S,
                         token_id=principal.token_id)
    return JSONResponse({"token": token}, headers={"cache-control": "no-store"})


async def api(request: Request) -> Response:
    """The HTTP API, for the pages' scripts (``proxy``)."""
    principal = signed_in(request)
    if principal is None:
        return _json_error(401, "unauthorized", "not signed in; sign in again")
    try:
        return await forward(request, request.path_params["path"], admin=principal.is_admin)
    except ProxyRefusedError as error:
        return _json_error(error.status, "refused", str(error))


def _json_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, "code": None,
                                   "details": None}}, status_code=status)


async def static(request: Request) -> Response:
    """One of our static files, by name."""
    return assets.response(request.path_params["name"], request.headers.get("if-none-match"))


def router(*, socket_path: str = "/socket/websocket") -> APIRouter:
    """The web app's routes, for ``app.include_router(router(), prefix=...)``.

    The host app must also serve the HTTP API and the conversation socket
    (``beamish.server.mount_beamish``, or ``beamish serve``), at the host's root.

    Args:
        socket_path: where the host serves the Phoenix socket.
    """
    web = APIRouter(route_class=WebRoute, include_in_schema=False)

    async def with_socket_path(request: Request) -> None:
        request.scope["beamish.web.socket_path"] = socket_path

    dependencies = [Depends(with_socket_path)]
    pages: list[tuple[str, Endpoint, list[str], str]] = [
        ("/", chat_page, ["GET"], "web_chat"),
        ("/settings", settings_page, ["GET"], "web_settings"),
        ("/sign-in", sign_in_page, ["GET"], "web_sign_in"),
        ("/sign-in", sign_in, ["POST"], "web_sign_in_post"),
        ("/sign-in/dev", sign_in_dev, ["POST"], "web_sign_in_dev"),
        ("/sign-in/link", sign_in_link_page, ["GET"], "web_sign_in_link"),
        ("/sign-in/link", sign_in_link, ["POST"], "web_sign_in_link_post"),
        ("/sign-out", sign_out, ["POST"], "web_sign_out"),
        ("/socket-token", socket_token, ["POST"], "web_socket_token"),
        ("/web-api/{path:path}", api, ["GET", "PUT", "POST", "DELETE"], "web_api"),
        ("/static/{name}", static, ["GET"], "web_static"),
    ]
    # Imported here: these modules build on this one's render() and error_page().
    from beamish.web import admin, outputs, usage
    pages += usage.routes()
    pages += admin.routes()
    pages += outputs.routes()
    for path, endpoint, methods, name in pages:
        web.add_api_route(path, endpoint, methods=methods, name=name,
                          response_class=Response, dependencies=dependencies)
    return web


__all__ = ["SOCKET_TOKEN_LIFETIME_S", "WebRoute", "base_path", "render", "router"]
