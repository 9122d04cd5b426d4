"""GET /api/admin/config/summary and POST /api/admin/config/validate over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.api._support import serve_api

pytestmark = pytest.mark.anyio


async def test_the_summary_and_the_check_see_a_tier_config_not_served(tmp_path: Path,
                                                                      ) -> None:
    """A pro-tier chat config on openai (no key): summarised, and its tier fails the check."""
    async with serve_api(tmp_path) as api:
        put = await api.http.put("/api/admin/llm/global/chat?tier=pro", headers=api.admin(),
                                 json={"provider": "openai", "model": "gpt-4o"})
        assert put.status_code == 200
        text = (await api.http.get("/api/admin/config/summary", headers=api.admin())).json()
        checked = await api.http.post("/api/admin/config/validate", headers=api.admin())
    assert "    tier pro: openai:gpt-4o (tier config)" in text["text"]
    assert "  echo (echo): serving, built in" in text["text"]
    body = checked.json()
    assert checked.status_code == 200
    assert body["ok"] is False
    failing = [(c["task_type"], c["tier"], [p["kind"] for p in c["problems"]])
               for c in body["checks"] if not c["ok"]]
    assert failing == [("chat", "pro", ["provider_not_serving"])]


async def test_the_config_endpoints_are_for_admins(tmp_path: Path) -> None:
    """A user's token gets 403 from both; no token, 401."""
    async with serve_api(tmp_path) as api:
        summary = await api.http.get("/api/admin/config/summary", headers=api.auth())
        checked = await api.http.post("/api/admin/config/validate", headers=api.auth())
        anonymous = await api.http.post("/api/admin/config/validate")
    assert (summary.status_code, checked.status_code, anonymous.status_code) == (403, 403, 401)
    assert summary.json()["error"]["type"] == "permission_denied"
