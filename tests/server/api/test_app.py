"""Building and mounting the API: create_app's own lifespan, a host app, OpenAPI, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import beamish
from beamish.auth import TokenSigner
from beamish.server.api import create_app, install_api
from tests.server.api._support import SECRET, ApiServer, make_settings

pytestmark = pytest.mark.anyio


def _bearer(user: str = "ada") -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenSigner(SECRET).issue(user)}"}


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan, as a server would, with an in-process client."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        yield http


async def test_create_app_runs_its_own_runtime(tmp_path: Path) -> None:
    """create_app(settings) starts a runtime with the app and stops it with it."""
    app = create_app(make_settings(tmp_path))
    async with _running(app) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        answer = await http.post("/v1/chat/completions", headers=_bearer(),
                                 json={"messages": [{"role": "user", "content": "hi"}]})
        assert answer.json()["choices"][0]["message"]["content"] == "[echo] hi"
    assert not hasattr(app.state, "beamish") or _stopped(app.state.beamish)


def _stopped(runtime: beamish.Application) -> bool:
    try:
        runtime.services  # noqa: B018 - raises once stopped
    except RuntimeError:
        return True
    return False


async def test_the_api_mounts_in_a_host_app(tmp_path: Path) -> None:
    """install_api adds beamish's routes and errors beside the host's own routes."""
    host = FastAPI(lifespan=beamish.lifespan(make_settings(tmp_path)))

    @host.get("/mine")
    async def mine() -> dict[str, str]:
        return {"host": "yes"}

    install_api(host)
    async with _running(host) as http:
        assert (await http.get("/mine")).json() == {"host": "yes"}
        config = await http.get("/api/users/ada/llm-config", headers=_bearer())
        assert config.status_code == 200
        refused = await http.get("/api/users/bob/llm-config", headers=_bearer())
        assert refused.json()["error"]["type"] == "permission_denied"


async def test_without_a_running_runtime_the_api_says_so() -> None:
    """Before its lifespan runs, /health is 503 and the API answers 503 saying why."""
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as http:
        health = await http.get("/health")
        assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
        config = await http.get("/api/users/ada/llm-config", headers=_bearer())
    assert config.status_code == 503
    assert "runtime is not running" in config.json()["error"]["message"]


async def test_openapi_describes_every_body_and_answer(api: ApiServer) -> None:
    """/openapi.json is served; every operation has typed bodies and typed answers."""
    spec = (await api.http.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            _check_operation(path, method, operation)
    assert "ErrorBody" in spec["components"]["schemas"]


def _check_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    answers = operation["responses"]
    success = answers.get("200") or answers.get("201")
    if success is None:
        assert "204" in answers, (method, path)
        return
    assert "application/json" in success["content"], (method, path)
    assert success["content"]["application/json"]["schema"], (method, path)
    body = operation.get("requestBody")
    if body is not None:
        assert "$ref" in body["content"]["application/json"]["schema"], (method, path)
    if path not in ("/health", "/ready"):  # unauthenticated probes
        assert {"401", "403", "422"} <= set(answers), (method, path)
