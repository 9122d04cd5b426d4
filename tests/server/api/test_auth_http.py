"""Who may call what: tokens (401), own data or admin (403), admin scope (403), dev mode."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamish.application import Application
from beamish.auth import DevModeError, TokenSigner
from beamish.server.api import ApiAuth, create_app
from tests.server.api._support import SECRET, ApiServer, make_settings, serve_api, shared_app

pytestmark = pytest.mark.anyio

PATH_VALUES = {"user_id": "ada", "provider": "openai", "task_type": "chat",
               "session_id": "s1", "name": "p", "label": "production", "version": "1",
               "job_id": "1", "output_id": "o1", "conversation_id": "c1", "message_id": "1"}
BODIES = {
    ("PUT", "/api/users/{user_id}/llm-config"): {"provider": "echo", "model": "echo-1"},
    ("PUT", "/api/users/{user_id}/llm-config/providers/{provider}"): {"model": "gpt-4o"},
    ("PUT", "/api/users/{user_id}/llm-config/tasks/{task_type}"): {"provider": "echo",
                                                                   "model": "echo-1"},
}


def _routes() -> list[tuple[str, str]]:
    spec = shared_app().openapi()
    return sorted((method.upper(), path) for path, item in spec["paths"].items()
                  for method in item)


ROUTES = _routes()
AUTHENTICATED = [r for r in ROUTES if r[1] not in ("/health", "/ready")]
ADMIN = [r for r in ROUTES if r[1].startswith("/api/admin/")]
PER_USER = [r for r in ROUTES if r[1].startswith("/api/users/")]


def _url(path: str, **values: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: {**PATH_VALUES, **values}[m.group(1)], path)


async def _call(api: ApiServer, method: str, path: str, headers: dict[str, str],
                **values: str) -> httpx.Response:
    body: Any = BODIES.get((method, path), {}) if method in ("POST", "PUT") else None
    return await api.http.request(method, _url(path, **values), json=body, headers=headers)


def test_the_route_table_is_what_the_tests_walk() -> None:
    """Every endpoint of the issue is published in the OpenAPI document."""
    # 45 and 43, the 9 of the jobs API and the 5 of the caller's conversations
    assert (len(ROUTES), len(AUTHENTICATED), len(PER_USER)) == (59, 57, 10)
    assert len(ADMIN) == 24  # 15, the 8 of the prompt templates, the outputs' stats
    assert ("POST", "/api/v1/llm_jobs") in ROUTES
    assert ("GET", "/api/v1/llm_outputs/{output_id}/feedback") in ROUTES
    assert ("GET", "/api/admin/llm_outputs/stats") in ROUTES
    assert ("DELETE", "/api/conversations/{conversation_id}") in ROUTES
    assert ("POST", "/api/admin/templates/{name}/preview") in ROUTES
    assert ("POST", "/v1/chat/completions") in ROUTES
    assert ("POST", "/v1/embeddings") in ROUTES
    assert ("GET", "/api/admin/config/summary") in ROUTES
    assert ("POST", "/api/admin/config/validate") in ROUTES
    assert ("GET", "/health") in ROUTES
    assert ("GET", "/ready") in ROUTES


async def test_every_endpoint_but_health_needs_a_token(api: ApiServer) -> None:
    """Without Authorization, each endpoint answers 401 with a Bearer challenge."""
    for method, path in AUTHENTICATED:
        answer = await _call(api, method, path, {})
        assert answer.status_code == 401, (method, path)
        assert answer.json()["error"]["type"] == "authentication_error"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert (await api.http.get("/health")).json() == {"status": "ok"}


@pytest.mark.parametrize(("header", "said"), [
    ("Bearer not-a-token", "malformed token"),
    ("Bearer " + TokenSigner("another-key-0123456789").issue("ada"), "bad token signature"),
    ("Bearer " + TokenSigner(SECRET, clock=lambda: 0.0).issue("ada", expires_in=1),
     "token expired"),
    ("Basic YWRhOnB3", "not 'Bearer <token>'"),
    ("Bearer", "not 'Bearer <token>'"),
])
async def test_bad_tokens_are_401_and_never_echoed(api: ApiServer, header: str,
                                                   said: str) -> None:
    """Malformed, foreign, expired or non-bearer credentials: 401 saying which, not what."""
    answer = await api.http.get("/api/users/ada/llm-config",
                                headers={"Authorization": header})
    assert answer.status_code == 401
    assert said in answer.json()["error"]["message"]
    token = header.partition(" ")[2]
    assert not token or token not in answer.text


async def test_admin_endpoints_refuse_user_tokens(api: ApiServer) -> None:
    """Each /api/admin endpoint answers 403 to a token without the admin scope."""
    for method, path in ADMIN:
        answer = await _call(api, method, path, api.auth("ada"))
        assert answer.status_code == 403, (method, path)
        assert "admin" in answer.json()["error"]["message"]
    assert await api.rt.store.list_providers() == []


async def test_a_user_cannot_reach_another_users_data(api: ApiServer) -> None:
    """Every /api/users/{bob}/... endpoint and bob's preview answer ada's token 403."""
    for method, path in PER_USER:
        answer = await _call(api, method, path, api.auth("ada"), user_id="bob")
        assert answer.status_code == 403, (method, path)
        assert answer.json()["error"]["type"] == "permission_denied"
    preview = await api.http.get("/api/llm/config/preview", params={"user_id": "bob"},
                                 headers=api.auth("ada"))
    assert preview.status_code == 403
    assert await api.rt.store.list_audit() == []
    assert await api.rt.store.list_configs("bob") == []


async def test_an_admin_reaches_every_users_data(api: ApiServer) -> None:
    """The same calls with an admin token succeed (or find nothing) instead."""
    for method, path in PER_USER:
        answer = await _call(api, method, path, api.admin(), user_id="bob")
        assert answer.status_code in (200, 204, 404), (method, path, answer.text)
    audit = await api.rt.store.list_audit(user_id="bob")
    assert {entry.actor for entry in audit} == {"root"}


async def test_dev_mode_trusts_user_id_on_loopback(tmp_path: Path) -> None:
    """In dev mode a user_id param authenticates (never as admin); tokens still work."""
    auth = ApiAuth.development("127.0.0.1", make_settings(tmp_path))
    async with serve_api(tmp_path, auth=auth) as api:
        mine = await api.http.get("/api/users/dev/llm-config", params={"user_id": "dev"})
        assert mine.status_code == 200
        other = await api.http.get("/api/users/ada/llm-config", params={"user_id": "dev"})
        assert other.status_code == 403
        admin = await api.http.get("/api/admin/providers", params={"user_id": "dev"})
        assert admin.status_code == 403
        nobody = await api.http.get("/api/users/dev/llm-config")
        assert nobody.status_code == 401
        token = await api.http.get("/api/admin/providers", headers=api.admin())
        assert token.status_code == 200


def test_dev_mode_cannot_be_built_for_a_public_address(tmp_path: Path) -> None:
    """ApiAuth.development refuses every address but loopback."""
    for host in ("0.0.0.0", "::", "example.com", "10.0.0.1"):
        with pytest.raises(DevModeError):
            ApiAuth.development(host, make_settings(tmp_path))


async def test_dev_mode_refuses_requests_that_arrived_on_a_public_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A dev-mode app reached on a non-loopback address trusts no user_id, and says why."""
    settings = make_settings(tmp_path)
    caplog.set_level(logging.WARNING, logger="beamish.server.api")
    async with Application(settings) as rt:
        app = create_app(runtime=rt, auth=ApiAuth.development("127.0.0.1", settings))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as http:
            refused = await http.get("/api/users/dev/llm-config", params={"user_id": "dev"})
    assert refused.status_code == 401
    assert "loopback" in refused.json()["error"]["message"]
    assert "DEV MODE" in caplog.text


async def test_without_a_configured_auth_the_runtime_settings_key_is_used(
        tmp_path: Path) -> None:
    """An app given no ApiAuth verifies tokens with its runtime's secret key."""
    settings = make_settings(tmp_path)
    async with Application(settings) as rt:
        app = create_app(runtime=rt)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            token = TokenSigner(SECRET).issue("ada")
            answer = await http.get("/api/users/ada/llm-config",
                                    headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
