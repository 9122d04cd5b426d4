"""Provider rows the client cannot build: refused at the API, survived at start."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from beamish.store import ProviderModel, ProviderRecord, open_store
from tests.server.api._support import ApiServer, make_settings, register, serve_api

pytestmark = pytest.mark.anyio

BAD_URLS = [
    "http://exa\u200bmple.com/v1",  # a zero-width space pasted into the host
    "http://exam\x01ple.com/v1",  # a control character
    "http://[::1/v1",  # an unclosed IPv6 literal
    "https:///v1",  # no host
    "http://example.com:99999/v1",  # no such port
]


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_base_url_the_client_refuses_is_a_422_naming_the_field(
        api: ApiServer, url: str) -> None:
    """A URL that passes the pattern but not httpx's parser is refused, and nothing stored."""
    answer = await api.http.post("/api/admin/providers", headers=api.admin(), json={
        "name": "pasted", "kind": "openai_compatible", "base_url": url})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["type"] == "validation_error"
    assert error["details"][0]["loc"] == ["body", "base_url"]
    assert "base_url cannot be used" in error["message"]
    assert url not in answer.text
    listed = await api.http.get("/api/admin/providers", headers=api.admin())
    assert listed.json() == {"providers": []}


async def test_a_stored_row_with_a_bad_url_does_not_stop_the_server(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server starts, warns naming the row, does not offer it and serves the others."""
    await register(tmp_path, [
        ProviderRecord(name="broken", kind="openai_compatible", base_url=BAD_URLS[0]),
        ProviderRecord(name="local", kind="ollama", base_url="http://127.0.0.1:9/v1")])
    async with open_store(make_settings(tmp_path).database_url) as store:
        await store.replace_provider_models("broken", [ProviderModel(
            provider="broken", model="m-1", discovered_at=datetime.now(UTC))])
    caplog.set_level(logging.WARNING, logger="beamish.llm")
    async with serve_api(tmp_path) as api:
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("'broken'" in w and "base URL" in w for w in warnings), warnings
        assert set(api.rt.llm.providers) == {"local", "echo"}
        listed = (await api.http.get("/api/admin/providers", headers=api.admin())).json()
        views = {view["name"]: view for view in listed["providers"]}
        assert views["broken"]["serving"] is False
        assert "base URL the HTTP client cannot use" in views["broken"]["problem"]
        assert "problem" not in views["local"]
        models = (await api.http.get("/api/llm/models", headers=api.auth())).json()["models"]
        assert "broken" not in {m["provider"] for m in models}
        echoed = await api.http.post("/v1/chat/completions", headers=api.auth(), json={
            "model": "beamish", "messages": [{"role": "user", "content": "still here"}]})
        assert echoed.status_code == 200
        checked = await api.http.post("/api/admin/providers/broken/validate",
                                      headers=api.admin())
        assert checked.status_code == 200
        assert checked.json()["status"] == "unusable"


async def test_a_stored_key_that_will_not_decrypt_is_reported_not_fatal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A key encrypted under another master key leaves the row broken, with the reason."""
    await register(tmp_path, [ProviderRecord(
        name="rotated", kind="openai", api_key_ciphertext=b"not-a-fernet-token")])
    caplog.set_level(logging.WARNING, logger="beamish.llm")
    async with serve_api(tmp_path) as api:
        assert any("'rotated'" in r.getMessage() for r in caplog.records)
        listed = (await api.http.get("/api/admin/providers", headers=api.admin())).json()
        assert "cannot be used" in listed["providers"][0]["problem"]
