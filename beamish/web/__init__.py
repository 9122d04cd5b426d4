"""The web app: chat and settings pages for people, served beside the HTTP API.

``beamish serve`` serves it at ``/``. A host app that mounts beamish adds it under any
prefix, every link relative to it::

    app = FastAPI()
    mount_beamish(app)                     # the API, the socket, the runtime
    install_web(app, prefix="/ui")         # the pages, at /ui/

Server-rendered HTML (Jinja2, autoescaped) and small ES modules of our own, no build step,
no CDN. The modules, each one concept:

* :mod:`.pages` — the routes (:func:`router`), each response with the security headers and
  each state-changing request checked for its origin (:mod:`.security`);
* :mod:`.cookie` — who a page speaks for: the HttpOnly, SameSite=Strict session cookie;
* :mod:`.links` — one-time sign-in links (``beamish token create --user U --link``);
* :mod:`.proxy` — the pages' scripts reach the HTTP API through it, with the cookie's token;
* :mod:`.assets` — the static files; :mod:`.errors` — the errors, the tree in its docstring;
* :mod:`.usage` — the usage page and its CSV (:mod:`.usage_report` its arithmetic,
  :mod:`.charts` its SVG charts);
* :mod:`.admin` — the admin console, ``/admin/...``, for admin principals only;
* :mod:`.outputs` — the job outputs pages (list, one output, enqueue, feedback, re-run,
  regenerate), their form logic in :mod:`.output_forms`.
"""

from __future__ import annotations

from fastapi import FastAPI

from beamish.web.links import LINK_LIFETIME_S, LinkCode, SignInLinks
from beamish.web.pages import router


def install_web(app: FastAPI, *, prefix: str = "", socket_path: str = "/socket/websocket") -> None:
    """Serve the web app on ``app`` under ``prefix`` ("" for ``/``); ``app`` must serve the
    API and the socket too (``mount_beamish``)."""
    app.include_router(router(socket_path=socket_path), prefix=prefix)


__all__ = ["LINK_LIFETIME_S", "LinkCode", "SignInLinks", "install_web", "router"]
