"""Text holding NUL (U+0000), which PostgreSQL cannot store, is a 422 naming the field on
both backends — where PostgreSQL gave a 500 and SQLite stored it — and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.api._support import ApiServer

pytestmark = pytest.mark.anyio

JOBS = "/api/v1/llm_jobs"
OUTPUTS = "/api/v1/llm_outputs"


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["type"] == "validation_error"
    assert f"{field}: Value error," in error["message"]
    assert "holds a NUL character (U+0000)" in error["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"prompt": "Sum\x00up"}, "body.prompt"),
    ({"prompt": "Sum up", "system": "\x00"}, "body.system"),
    ({"prompt": "Sum up", "unique_key": "k\x00"}, "body.unique_key"),
    ({"template": "digest", "variables": {"a": [{"b": "\x00"}]}}, "body.variables"),
    ({"prompt": "Sum up", "schema": {"title": "\x00"}}, "body.schema"),
])
async def test_a_job_with_nul_is_a_422_and_nothing_is_queued(
        api_on_both: ApiServer, body: dict[str, Any], field: str) -> None:
    """Prompt, system, unique key, variables and schema at any depth."""
    api = api_on_both
    _refused(await api.http.post(JOBS, headers=api.auth(), json=body), field)
    assert (await api.http.get(OUTPUTS, headers=api.auth())).json()["outputs"] == []


async def test_free_text_elsewhere_with_nul_is_a_422_and_changes_nothing(
        api_on_both: ApiServer) -> None:
    """Templates, a conversation's title, a config's model and metadata, a feedback
    reason, a user id in a path and an output filter: each refused before the store."""
    api = api_on_both
    http, admin, ada = api.http, api.admin(), api.auth()
    _refused(await http.post("/api/admin/templates", headers=admin, json={
        "name": "digest", "prompt": "Sum up\x00"}), "body.prompt")
    _refused(await http.post("/api/admin/templates", headers=admin, json={
        "name": "digest", "prompt": "Sum up", "variables_schema": {"x\x00": 1}}),
        "body.variables_schema")
    assert (await http.get("/api/admin/templates/digest", headers=admin)).status_code == 404
    _refused(await http.put("/api/conversations/c1/title", headers=ada,
                            json={"title": "Trip\x00"}), "body.title")
    _refused(await http.put("/api/users/ada/llm-config", headers=ada,
                            json={"provider": "echo", "model": "echo\x00"}), "body.model")
    _refused(await http.put("/api/users/ada/llm-config/providers/echo", headers=ada,
                            json={"model": "echo-1", "metadata": {"note": ["\x00"]}}),
             "body.metadata")
    assert (await http.get("/api/users/ada/llm-config", headers=ada)).json()[
        "providers"] == []
    _refused(await http.put(f"{OUTPUTS}/o1/feedback", headers=ada,
                            json={"rating": "up", "reason": "\x00"}), "body.reason")
    _refused(await http.get("/api/users/a%00b/usage", headers=admin), "path.user_id")
    answer = await http.get(OUTPUTS, headers=ada, params={"template": "a\x00"})
    assert answer.status_code == 422, answer.text
    assert "holds a NUL character (U+0000)" in answer.json()["error"]["message"]
