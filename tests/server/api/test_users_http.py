"""Users' LLM configuration, usage, resolution preview and the catalog over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from beamish.store import Provider, UsageEvent
from tests.server.api._support import ApiServer

pytestmark = pytest.mark.anyio


async def test_a_user_without_configuration_has_an_empty_one(api: ApiServer) -> None:
    """GET of a new user's config: no tier, default, configs or overrides."""
    answer = await api.http.get("/api/users/ada/llm-config", headers=api.auth())
    assert answer.json() == {"user_id": "ada", "tier": None, "default": None,
                             "providers": [], "tasks": []}


async def test_put_sets_the_default_and_the_session_sees_it_at_once(api: ApiServer) -> None:
    """PUT makes the default (parameters included); an open session resolves to it."""
    await api.http.post("/api/sessions", json={"session_id": "s1"}, headers=api.auth())
    before = await api.http.post("/api/sessions/s1/completions", json={"content": "hi"},
                                 headers=api.auth())
    assert before.json()["config"]["sources"]["model"] == "system_default"
    put = await api.http.put("/api/users/ada/llm-config", headers=api.auth(), json={
        "provider": "echo", "model": "echo-1", "parameters": {"max_tokens": 2}})
    assert put.status_code == 200
    body = put.json()
    assert (body["tier"], body["default"]["model"]) == ("free", "echo-1")
    assert body["default"]["parameters"] == {"max_tokens": 2, "temperature": None,
                                             "top_p": None, "timeout_s": None,
                                             "max_retries": None, "fallback_models": []}
    after = await api.http.post("/api/sessions/s1/completions",
                                json={"content": "one two three"}, headers=api.auth())
    assert after.json()["config"]["sources"]["model"] == "user_default"
    assert (after.json()["text"], after.json()["finish_reason"]) == ("[echo] one ", "length")


async def test_put_without_parameters_keeps_them(api: ApiServer) -> None:
    """A PUT that leaves parameters out changes the default's model and keeps its own."""
    await api.http.put("/api/users/ada/llm-config", headers=api.auth(),
                       json={"provider": "echo", "model": "echo-1",
                             "parameters": {"temperature": 0.3}})
    again = await api.http.put("/api/users/ada/llm-config", headers=api.auth(),
                               json={"provider": "echo", "model": "echo-1"})
    assert again.json()["default"]["parameters"]["temperature"] == 0.3


async def test_delete_removes_every_config_and_override(api: ApiServer) -> None:
    """DELETE leaves the user with their tier and nothing else."""
    headers = api.auth()
    await api.http.put("/api/users/ada/llm-config", headers=headers,
                       json={"provider": "echo", "model": "echo-1"})
    await api.http.put("/api/users/ada/llm-config/providers/openai", headers=headers,
                       json={"model": "gpt-4o"})
    await api.http.put("/api/users/ada/llm-config/tasks/reasoning", headers=headers,
                       json={"provider": "echo", "model": "echo-1"})
    assert (await api.http.delete("/api/users/ada/llm-config", headers=headers)).status_code \
        == 204
    answer = await api.http.get("/api/users/ada/llm-config", headers=headers)
    assert answer.json() == {"user_id": "ada", "tier": "free", "default": None,
                             "providers": [], "tasks": []}


async def test_per_provider_configs_are_created_updated_and_removed(api: ApiServer) -> None:
    """PUT creates then updates one provider's config; GET reads it; DELETE removes it."""
    url, headers = "/api/users/ada/llm-config/providers/anthropic", api.auth()
    assert (await api.http.get(url, headers=headers)).status_code == 404
    created = await api.http.put(url, headers=headers, json={
        "model": "claude-sonnet-4", "parameters": {"temperature": 0.5},
        "metadata": {"why": "tests"}})
    assert created.status_code == 200
    assert (created.json()["model"], created.json()["is_default"]) == ("claude-sonnet-4", False)
    updated = await api.http.put(url, headers=headers,
                                 json={"model": "claude-opus-4", "is_default": True})
    body = updated.json()
    assert (body["model"], body["is_default"]) == ("claude-opus-4", True)
    assert (body["parameters"]["temperature"], body["metadata"]) == (0.5, {"why": "tests"})
    assert (await api.http.get(url, headers=headers)).json()["model"] == "claude-opus-4"
    assert (await api.http.delete(url, headers=headers)).status_code == 204
    missing = await api.http.delete(url, headers=headers)
    assert missing.status_code == 404
    assert "has no 'anthropic' config" in missing.json()["error"]["message"]


async def test_per_task_overrides_are_set_read_and_removed(api: ApiServer) -> None:
    """A task override is used for its task type only, and can be removed."""
    url, headers = "/api/users/ada/llm-config/tasks/planning", api.auth()
    assert (await api.http.get(url, headers=headers)).status_code == 404
    put = await api.http.put(url, headers=headers, json={
        "provider": "echo", "model": "echo-1", "parameters": {"top_p": 0.5}})
    assert put.json() == {"task_type": "planning", "provider": "echo", "model": "echo-1",
                          "parameters": {"temperature": None, "max_tokens": None,
                                         "top_p": 0.5, "timeout_s": None,
                                         "max_retries": None, "fallback_models": []}}
    preview = await api.http.get("/api/llm/config/preview", headers=headers,
                                 params={"task_type": "planning"})
    assert preview.json()["sources"]["top_p"] == "user_task_override"
    chat = await api.http.get("/api/llm/config/preview", headers=headers)
    assert "top_p" not in chat.json()["sources"]
    assert (await api.http.delete(url, headers=headers)).status_code == 204
    assert (await api.http.delete(url, headers=headers)).status_code == 404


@pytest.mark.parametrize(("url", "body", "where"), [
    ("/api/users/ada/llm-config", {"provider": "echo"}, "body.model: Field required"),
    ("/api/users/ada/llm-config", {"provider": "echo", "model": "m",
                                   "parameters": {"temprature": 1}},
     "body.parameters.temprature"),
    ("/api/users/ada/llm-config/providers/nope", {"model": "m"}, "path.provider"),
    ("/api/users/ada/llm-config/tasks/bad%20name", {"provider": "echo", "model": "m"},
     "path.task_type"),
    ("/api/users/ada/llm-config/tasks/chat", {"provider": "echo", "model": ""},
     "body.model"),
])
async def test_malformed_config_writes_are_422_and_change_nothing(
        api: ApiServer, url: str, body: dict[str, object], where: str) -> None:
    """A bad body or path is a 422 naming the field; nothing is written."""
    answer = await api.http.put(url, json=body, headers=api.auth())
    assert answer.status_code == 422
    assert where in answer.json()["error"]["message"]
    assert await api.rt.store.list_audit() == []


async def test_the_preview_explains_every_field_and_warns(api: ApiServer) -> None:
    """The preview names each field's layer, explains it in words, and lists skips."""
    await api.http.put("/api/users/ada/llm-config/providers/openai", headers=api.auth(),
                       json={"model": "gpt-4o", "is_default": True})
    preview = await api.http.get("/api/llm/config/preview", headers=api.auth(),
                                 params={"task_type": "reasoning"})
    body = preview.json()
    assert (body["user_id"], body["provider"], body["model"]) == ("ada", "echo", "echo-1")
    assert body["sources"]["model"] == "system_default"
    assert body["sources"]["temperature"] == "system_default"
    assert any(w.startswith("user_default") and "openai" in w for w in body["warnings"])
    assert "provider: echo (system_default)" in body["explanation"]
    asked = await api.http.get("/api/llm/config/preview", headers=api.auth(),
                               params={"provider": "echo", "model": "echo-1"})
    assert asked.json()["sources"]["provider"] == "request"


async def test_usage_has_totals_breakdowns_filters_and_days(api: ApiServer) -> None:
    """The usage report answers the window, narrowed by provider, model and task in any
    combination, per day too."""
    now = datetime.now(UTC)
    events: list[tuple[Provider, str, str, int, int, datetime]] = [
        ("echo", "echo-1", "chat", 1, 2, now), ("echo", "echo-1", "code", 3, 4, now),
        ("openai", "gpt-4o", "chat", 5, 6, now - timedelta(days=2))]
    for n, (provider, model, task, prompt, completion, at) in enumerate(events):
        await api.rt.store.record(UsageEvent(
            request_id=f"r{n}", user_id="ada", provider=provider, model=model,
            task_type=task, prompt_tokens=prompt, completion_tokens=completion,
            created_at=at))
    url, headers = "/api/users/ada/usage", api.auth()
    whole = (await api.http.get(url, headers=headers)).json()
    assert whole["totals"] == {"requests": 3, "errors": 0, "prompt_tokens": 9,
                               "completion_tokens": 12}
    assert [r["task_type"] for r in whole["by_task_type"]] == ["chat", "code"]
    recent = (await api.http.get(url, headers=headers, params={
        "since": (now - timedelta(days=1)).isoformat()})).json()
    assert recent["totals"]["requests"] == 2
    echo = (await api.http.get(url, headers=headers, params={"provider": "echo"})).json()
    assert (echo["totals"]["prompt_tokens"], len(echo["by_provider_model"])) == (4, 1)
    chat = (await api.http.get(url, headers=headers, params={"task_type": "chat"})).json()
    assert chat["totals"]["completion_tokens"] == 8
    assert chat["filters"] == {"provider": None, "model": None, "task_type": "chat"}
    days = (await api.http.get(url, headers=headers, params={"per_day": "true"})).json()
    assert [d["requests"] for d in days["days"]] == [1, 2]
    both = (await api.http.get(url, headers=headers, params={
        "provider": "echo", "task_type": "chat", "per_day": "true"})).json()
    assert both["totals"] == {"requests": 1, "errors": 0, "prompt_tokens": 1,
                              "completion_tokens": 2}
    assert [(r["provider"], r["requests"]) for r in both["by_provider_model"]] == [("echo", 1)]
    assert [(r["task_type"], r["requests"]) for r in both["by_task_type"]] == [("chat", 1)]
    assert [d["requests"] for d in both["days"]] == [1]
    gpt_chat = (await api.http.get(url, headers=headers, params={
        "model": "gpt-4o", "task_type": "code"})).json()
    assert gpt_chat["totals"]["requests"] == 0
    assert gpt_chat["by_provider_model"] == gpt_chat["by_task_type"] == []


@pytest.mark.parametrize(("params", "status", "said"), [
    ({"since": "2026-01-01T00:00:00"}, 422, "query.since"),
    ({"until": "yesterday"}, 422, "query.until"),
])
async def test_usage_queries_that_cannot_be_answered_say_why(
        api: ApiServer, params: dict[str, str], status: int, said: str) -> None:
    """Naive or unreadable times are 422s."""
    answer = await api.http.get("/api/users/ada/usage", headers=api.auth(), params=params)
    assert answer.status_code == status
    assert said in answer.json()["error"]["message"]


async def test_the_catalog_lists_what_can_be_called(api: ApiServer) -> None:
    """Any authenticated user reads the catalog: here, the built-in echo model."""
    answer = await api.http.get("/api/llm/models", headers=api.auth("anyone"))
    assert answer.json() == {"models": [{"provider": "echo", "kind": "echo", "model": "echo-1",
                                         "context_window": None, "source": "builtin",
                                         "serving": True}]}


async def test_writes_are_audited_under_the_caller(api: ApiServer) -> None:
    """Each write appears in the audit log with the caller as actor."""
    await api.http.put("/api/users/ada/llm-config", headers=api.auth(),
                       json={"provider": "echo", "model": "echo-1"})
    await api.http.put("/api/users/ada/llm-config/tasks/chat", headers=api.admin(),
                       json={"provider": "echo", "model": "echo-1"})
    audit = await api.rt.store.list_audit(user_id="ada")
    assert [(e.actor, e.entity) for e in audit] == [
        ("root", "user_task_override"), ("ada", "user_llm_config"), ("ada", "user_profile")]
