"""``/docs``: Swagger UI from files served by the app itself, so it works offline.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a CDN, and is
blank without the internet. Here the page is FastAPI's (``get_swagger_ui_html``), pointed at
the unmodified ``swagger-ui-dist`` release vendored in ``static/swagger-ui`` (see its
``VENDORED.md``), served under ``/docs/static``. ReDoc, which needs a CDN too, is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION: Final = "5.36.0"
SWAGGER_UI_DIR: Final = Path(__file__).parent / "static" / "swagger-ui"
DOCS_PATH: Final = "/docs"
STATIC_PATH: Final = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI of ``app.openapi_url``) and its assets, offline."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} — API"
    app.mount(STATIC_PATH, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger_ui")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=title,
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png")

    app.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
