"""The prompt template admin API: create, version, list, label, preview, errors and audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.api._support import ApiServer

pytestmark = pytest.mark.anyio

BASE = "/api/admin/templates"
SCHEMA = {"type": "object", "required": ["name"],
          "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}


async def create(api: ApiServer, **fields: Any) -> httpx.Response:
    body = {"name": "greet", "prompt": "Hello {{ name }}", **fields}
    return await api.http.post(BASE, headers=api.admin(), json=body)


async def test_create_version_list_get_and_label(api: ApiServer) -> None:
    """Version 1 then 2; listing and detail show versions and labels; a label moves."""
    first = await create(api, system="Greet {{ name }}", task_type="greeting",
                         output_format="text", variables_schema=SCHEMA)
    assert first.status_code == 201
    assert first.json()["version"] == 1
    assert first.json()["created_by"] == "root"
    second = await api.http.post(f"{BASE}/greet/versions", headers=api.admin(),
                                 json={"prompt": "Hi {{ name }}", "task_type": "greeting"})
    assert (second.status_code, second.json()["version"]) == (201, 2)
    labelled = await api.http.put(f"{BASE}/greet/labels/production", headers=api.admin(),
                                  json={"version": 1})
    assert labelled.json()["version"] == 1
    listed = (await api.http.get(BASE, headers=api.admin())).json()
    assert [(t["name"], t["latest_version"], t["labels"]) for t in listed["templates"]] == [
        ("greet", 2, {"production": 1})]
    detail = (await api.http.get(f"{BASE}/greet", headers=api.admin())).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["labels"] == {"production": 1}
    one = await api.http.get(f"{BASE}/greet/versions/1", headers=api.admin())
    assert one.json()["variables_schema"] == SCHEMA
    deleted = await api.http.delete(f"{BASE}/greet/labels/production", headers=api.admin())
    assert deleted.status_code == 204
    detail = (await api.http.get(f"{BASE}/greet", headers=api.admin())).json()
    assert detail["labels"] == {}


async def test_preview_renders_and_resolves_the_model_for_a_user(api: ApiServer) -> None:
    """The prompt, system prompt and, for a user, the model with its provenance."""
    await create(api, system="Be {{ tone }}", task_type="summarize")
    await api.http.put("/api/admin/llm/global/summarize", headers=api.admin(),
                       json={"provider": "echo", "model": "echo-summary",
                             "template": "greet", "template_label": "production"})
    answer = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                 json={"variables": {"name": "ada", "tone": "brief"},
                                       "user_id": "ada"})
    body = answer.json()
    assert answer.status_code == 200
    assert body["rendered"] == {"template": "greet", "version": 1, "label": None,
                                "prompt": "Hello ada", "system": "Be brief",
                                "task_type": "summarize", "output_format": None}
    config = body["config"]
    assert (config["provider"], config["model"], config["sources"]["model"]) == (
        "echo", "echo-summary", "global_config")
    assert (config["template"], config["template_label"], config["sources"]["template"]) == (
        "greet", "production", "global_config")
    plain = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                json={"variables": {"name": "bo", "tone": "x"}, "version": 1})
    assert plain.json()["config"] is None


async def test_missing_things_are_404_and_a_taken_name_409(api: ApiServer) -> None:
    """Unknown template, version or label: 404 saying which; creating twice: 409."""
    missing = await api.http.post(f"{BASE}/nope/preview", headers=api.admin(), json={})
    assert missing.status_code == 404
    assert "'nope' does not exist" in missing.json()["error"]["message"]
    assert (await api.http.post(f"{BASE}/nope/versions", headers=api.admin(),
                                json={"prompt": "x"})).status_code == 404
    await create(api)
    assert (await create(api)).status_code == 409
    for answer in (
            await api.http.get(f"{BASE}/greet/versions/7", headers=api.admin()),
            await api.http.put(f"{BASE}/greet/labels/staging", headers=api.admin(),
                               json={"version": 7}),
            await api.http.delete(f"{BASE}/greet/labels/staging", headers=api.admin()),
            await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                json={"label": "staging"})):
        assert answer.status_code == 404, answer.text


async def test_a_syntax_error_is_422_with_its_line(api: ApiServer) -> None:
    """A source that does not compile is refused and nothing is stored."""
    answer = await create(api, prompt="line one\n{% for x in xs %}\n{{ x }}")
    error = answer.json()["error"]
    assert (answer.status_code, error["type"], error["param"]) == (
        422, "validation_error", "prompt")
    assert "at line 3" in error["message"]
    bad_schema = await create(api, variables_schema={"type": 12})
    assert bad_schema.status_code == 422
    assert bad_schema.json()["error"]["param"] == "variables_schema"
    listed = (await api.http.get(BASE, headers=api.admin())).json()
    assert listed["templates"] == []


async def test_bad_variables_are_422_naming_each(api: ApiServer) -> None:
    """Against the schema: every missing or mistyped variable is listed."""
    await create(api, variables_schema=SCHEMA)
    answer = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                 json={"variables": {"n": "two"}})
    error = answer.json()["error"]
    assert (answer.status_code, error["type"]) == (422, "validation_error")
    assert [d["msg"] for d in error["details"]] == [
        'variables: "name" is a required property', 'n: "two" is not of type "integer"']


async def test_sandbox_refusals_are_422_with_the_problem(api: ApiServer) -> None:
    """An escape and a huge value: 422 template_render_error, code naming the problem."""
    await create(api, prompt="{{ ''.__class__.__mro__ }}")
    await api.http.post(f"{BASE}/greet/versions", headers=api.admin(),
                        json={"prompt": "{{ 'a' * 10**9 }}"})
    escape = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                 json={"version": 1})
    huge = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                               json={"version": 2})
    assert [(a.status_code, a.json()["error"]["type"], a.json()["error"]["code"])
            for a in (escape, huge)] == [(422, "template_render_error", "sandbox"),
                                         (422, "template_render_error", "too_big")]


async def test_label_and_version_together_are_refused(api: ApiServer) -> None:
    """A preview names a label or a version, not both."""
    await create(api)
    answer = await api.http.post(f"{BASE}/greet/preview", headers=api.admin(),
                                 json={"label": "production", "version": 1})
    assert answer.status_code == 422
    assert "not both" in answer.json()["error"]["message"]


async def test_template_writes_are_audited_under_the_admin(api: ApiServer) -> None:
    """Each write is an audit entry of entity template by the caller."""
    await create(api)
    await api.http.put(f"{BASE}/greet/labels/production", headers=api.admin(),
                       json={"version": 1})
    entries = (await api.http.get("/api/admin/audit", headers=api.admin())).json()["entries"]
    assert [(e["entity"], e["entity_key"], e["action"], e["actor"]) for e in entries][:2] == [
        ("template", "greet@production", "create", "root"),
        ("template", "greet/v1", "create", "root")]


async def test_the_template_api_is_for_admins(api: ApiServer) -> None:
    """A user's token gets 403; no token 401."""
    user = await api.http.get(BASE, headers=api.auth())
    anonymous = await api.http.post(f"{BASE}/greet/preview", json={})
    assert (user.status_code, anonymous.status_code) == (403, 401)
