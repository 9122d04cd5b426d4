"""``/docs`` works offline: Swagger UI's page refers only to files the app serves itself."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from beamish.server.api import create_app
from beamish.server.api.docs import SWAGGER_UI_DIR, SWAGGER_UI_VERSION

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the standalone app (no runtime needed for its documentation)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()),
                                 base_url="http://127.0.0.1") as client:
        yield client


async def test_docs_page_loads_nothing_from_elsewhere(http: httpx.AsyncClient) -> None:
    """Every script, stylesheet and icon of /docs is a path on this server, and is served."""
    page = await http.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert sorted(assets) == ["/docs/static/favicon-32x32.png",
                              "/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"]
    assert "cdn" not in page.text
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    for asset in assets:
        served = await http.get(asset)
        assert served.status_code == 200, asset
        assert served.content == (SWAGGER_UI_DIR / asset.rsplit("/", 1)[1]).read_bytes()


async def test_redoc_which_needs_a_cdn_is_not_offered(http: httpx.AsyncClient) -> None:
    """/redoc would load its script from a CDN: not served."""
    assert (await http.get("/redoc")).status_code == 404


def test_the_vendored_files_are_the_upstream_release_with_its_licence() -> None:
    """Each vendored file matches the digest VENDORED.md records; the licence is there."""
    notes = (SWAGGER_UI_DIR / "VENDORED.md").read_text()
    assert f"`swagger-ui-dist` {SWAGGER_UI_VERSION}, unmodified" in notes
    recorded = dict(line.split()[::-1] for line in re.findall(r"^[0-9a-f]{64}  \S+$", notes,
                                                              re.MULTILINE))
    assert set(recorded) >= {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"}
    for name, digest in recorded.items():
        assert hashlib.sha256((SWAGGER_UI_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (SWAGGER_UI_DIR / "LICENSE").read_text()
