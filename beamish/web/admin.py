"""The admin console: ``/admin/...``, for admin principals only.

Every page checks the cookie's principal first: not signed in goes to sign in, signed in
without the ``admin`` scope gets a 403 page saying so — never an empty page. The pages:

* ``/admin`` — top usage (users by tokens or requests over the last days);
* ``/admin/providers`` — registered providers: add (the key is sent once and shown masked
  afterwards, never again in a page), validate, list discovered models, remove;
* ``/admin/configs`` — global and tier configs per task type, edited with the API's
  validation messages shown, and the configuration checked against the catalog;
* ``/admin/templates`` — templates, their versions and labels: move a label, preview a
  render with variables;
* ``/admin/users`` — users with usage and their tiers; set a user's tier;
* ``/admin/audit`` — the audit log, :data:`AUDIT_PAGE` entries a page, newest first;
* ``/admin/runtime`` — the supervision tree, live sessions, mailbox depths and restart
  counts, refreshed by ``admin-runtime.js`` every :data:`RUNTIME_REFRESH_MS` ms while the
  tab is visible.

Reading pages (top usage, users, audit) are rendered here from the store; the others are
filled and changed by ``admin.js`` through the web app's proxy, which passes ``/admin/...``
calls on to the admin API for admin principals only (``proxy.forward``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args

from fastapi import Request
from starlette.responses import Response

from beamish.application import Application
from beamish.auth import Principal
from beamish.server.api.deps import get_runtime
from beamish.store import Provider, UserNotFoundError, UserUsage
from beamish.web.cookie import signed_in
from beamish.web.pages import Endpoint, _to_sign_in, error_page, render

AUDIT_PAGE: Final = 50
MAX_AUDIT_PAGES: Final = 20
"""The admin API answers at most 1000 audit entries: 20 pages of 50."""
TOP_USERS: Final = 50
USAGE_DAYS: Final = 30
RUNTIME_REFRESH_MS: Final = 1500

_FORBIDDEN: Final = ("The admin console is for admin principals only; your token has no "
                     "admin scope. Sign in with an admin token (beamish token create --user "
                     "YOU --admin).")


def _admin(request: Request) -> Principal | Response:
    """The admin principal, or the response to send instead (sign in, or a 403 page)."""
    principal = signed_in(request)
    if principal is None:
        return _to_sign_in(request)
    if not principal.is_admin:
        return error_page(request, 403, _FORBIDDEN, principal)
    return principal


def _page(request: Request, principal: Principal, template: str, section: str,
          **context: Any) -> Response:
    return render(request, template, principal=principal, page="admin", section=section,
                  **context)


def _window() -> tuple[datetime, datetime]:
    until = datetime.now(UTC)
    return until - timedelta(days=USAGE_DAYS), until


async def overview_page(request: Request) -> Response:
    """Top usage over the last days, by tokens or by requests."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    by: Literal["tokens", "requests"] = (
        "requests" if request.query_params.get("by") == "requests" else "tokens")
    since, until = _window()
    top = await get_runtime(request).store.top_users(TOP_USERS, by=by, since=since, until=until)
    return _page(request, principal, "admin_overview.html", "overview", top=top, by=by,
                 days=USAGE_DAYS)


async def providers_page(request: Request) -> Response:
    """Registered providers (``admin.js`` lists them and does the changes)."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    return _page(request, principal, "admin_providers.html", "providers",
                 kinds=list(get_args(Provider)))


async def configs_page(request: Request) -> Response:
    """Global and tier configs per task type."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    llm = get_runtime(request).settings.llm
    return _page(request, principal, "admin_configs.html", "configs",
                 task_types=sorted({"chat", *llm.task_types}), tiers=list(llm.tiers),
                 kinds=list(get_args(Provider)))


async def templates_page(request: Request) -> Response:
    """Templates, versions, labels and render previews."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    return _page(request, principal, "admin_templates.html", "templates")


async def _tiers(runtime: Application, users: list[UserUsage]) -> list[dict[str, Any]]:
    rows = []
    for user in users:
        try:
            tier = (await runtime.store.get_profile(user.user_id)).tier
        except UserNotFoundError:
            tier = runtime.settings.llm.default_tier
        rows.append({"usage": user, "tier": tier})
    return rows


async def users_page(request: Request) -> Response:
    """The users with usage in the last days and their tiers; set a tier."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    runtime = get_runtime(request)
    since, until = _window()
    top = await runtime.store.top_users(TOP_USERS, since=since, until=until)
    return _page(request, principal, "admin_users.html", "users",
                 users=await _tiers(runtime, top), tiers=list(runtime.settings.llm.tiers),
                 days=USAGE_DAYS)


def _page_number(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_PAGES:
        return None
    return int(raw)


async def audit_page(request: Request) -> Response:
    """The audit log, newest first, a page at a time (``?page=``)."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    number = _page_number(request.query_params.get("page"))
    if number is None:
        return error_page(request, 400, f"page is a whole number from 1 to {MAX_AUDIT_PAGES}"
                          f" (the log shows its newest {AUDIT_PAGE * MAX_AUDIT_PAGES} "
                          "entries)", principal)
    fetched = await get_runtime(request).store.list_audit(limit=number * AUDIT_PAGE + 1)
    entries = fetched[(number - 1) * AUDIT_PAGE:number * AUDIT_PAGE]
    more = len(fetched) > number * AUDIT_PAGE and number < MAX_AUDIT_PAGES
    return _page(request, principal, "admin_audit.html", "audit", entries=entries,
                 number=number, more=more)


async def runtime_page(request: Request) -> Response:
    """The live runtime view (``admin-runtime.js`` polls the admin API)."""
    principal = _admin(request)
    if isinstance(principal, Response):
        return principal
    return _page(request, principal, "admin_runtime.html", "runtime",
                 refresh_ms=RUNTIME_REFRESH_MS)


def routes() -> list[tuple[str, Endpoint, list[str], str]]:
    """The admin console's routes, for ``pages.router``."""
    return [
        ("/admin", overview_page, ["GET"], "web_admin"),
        ("/admin/providers", providers_page, ["GET"], "web_admin_providers"),
        ("/admin/configs", configs_page, ["GET"], "web_admin_configs"),
        ("/admin/templates", templates_page, ["GET"], "web_admin_templates"),
        ("/admin/users", users_page, ["GET"], "web_admin_users"),
        ("/admin/audit", audit_page, ["GET"], "web_admin_audit"),
        ("/admin/runtime", runtime_page, ["GET"], "web_admin_runtime"),
    ]


__all__ = ["AUDIT_PAGE", "RUNTIME_REFRESH_MS", "routes"]
