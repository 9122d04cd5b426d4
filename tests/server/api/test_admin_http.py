"""Admin endpoints: the provider registry (keys never shown), global and tier configs,
audit, top users, live sessions and runtime introspection."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from beamish.auth import TokenAuthenticator, TokenSigner
from beamish.server.api import ApiAuth
from beamish.store import UsageEvent
from beamish.store.secrets import ENV_VAR
from tests.llm.providers._fake_llm_server import FakeLLMServer
from tests.server.api._support import SECRET, ApiServer, make_settings, serve_api

pytestmark = pytest.mark.anyio

API_KEY = "sk-admin-test-do-not-leak-4f9c2b7e1a"


async def test_a_provider_key_is_stored_encrypted_and_never_answered(
        api: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    """POST stores the key as ciphertext; answers, listings and the audit show it masked."""
    caplog.set_level(logging.DEBUG)
    added = await api.http.post("/api/admin/providers", headers=api.admin(), json={
        "name": "vllm", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
        "api_key": API_KEY})
    assert added.status_code == 201
    assert added.json() == {"name": "vllm", "kind": "openai_compatible",
                            "base_url": "http://127.0.0.1:9/v1", "enabled": True,
                            "validated_at": None, "has_api_key": True,
                            "api_key_masked": "sk-..." + API_KEY[-4:],
                            "serving": True}  # the LLM client was rebuilt with it
    record = await api.rt.store.get_provider("vllm")
    assert record.api_key_ciphertext is not None
    assert API_KEY.encode() not in record.api_key_ciphertext
    answers = [added.text,
               (await api.http.get("/api/admin/providers", headers=api.admin())).text,
               (await api.http.get("/api/admin/audit", headers=api.admin())).text,
               (await api.http.post("/api/admin/providers/vllm/validate",
                                    headers=api.admin())).text]
    assert all(API_KEY not in text for text in answers)
    assert API_KEY not in caplog.text


async def test_a_removed_provider_stops_serving(api: ApiServer) -> None:
    """DELETE rebuilds the LLM client without the provider."""
    await api.http.post("/api/admin/providers", headers=api.admin(),
                        json={"name": "local", "kind": "ollama"})
    assert "local" in api.rt.llm.providers
    removed = await api.http.delete("/api/admin/providers/local", headers=api.admin())
    assert removed.status_code == 204
    assert "local" not in api.rt.llm.providers


async def test_a_duplicate_provider_is_a_409(api: ApiServer) -> None:
    """Registering a name twice is a conflict that says what to do."""
    body = {"name": "local", "kind": "ollama"}
    assert (await api.http.post("/api/admin/providers", headers=api.admin(),
                                json=body)).status_code == 201
    again = await api.http.post("/api/admin/providers", headers=api.admin(), json=body)
    assert again.status_code == 409
    assert "already registered" in again.json()["error"]["message"]


@pytest.mark.parametrize(("environ", "said"), [
    (None, "BEAMISH_SECRET_KEY is not set"),
    ("a-token-signing-key-that-is-not-fernet", "malformed key"),
])
async def test_a_key_without_a_usable_secret_key_is_refused_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: str | None,
        said: str) -> None:
    """Without a Fernet BEAMISH_SECRET_KEY a provider key is refused, saying what to set."""
    if environ is None:
        monkeypatch.delenv(ENV_VAR)
    else:
        monkeypatch.setenv(ENV_VAR, environ)
    tokens = ApiAuth(TokenAuthenticator(TokenSigner(SECRET)))
    async with serve_api(tmp_path, settings=make_settings(tmp_path, secret=None),
                         auth=tokens) as api:
        refused = await api.http.post("/api/admin/providers", headers=api.admin(), json={
            "name": "openai", "kind": "openai", "api_key": API_KEY})
        assert refused.status_code == 500
        error = refused.json()["error"]
        assert error["type"] == "configuration_error"
        assert said in error["message"]
        assert API_KEY not in refused.text
        assert await api.rt.store.list_providers() == []
        keyless = await api.http.post("/api/admin/providers", headers=api.admin(),
                                      json={"name": "local", "kind": "ollama"})
        assert keyless.status_code == 201


async def test_a_malformed_provider_is_a_422_that_does_not_echo_the_key(
        api: ApiServer) -> None:
    """A body missing a field is a 422 whose text holds nothing of the key sent."""
    refused = await api.http.post("/api/admin/providers", headers=api.admin(),
                                  json={"name": "x", "api_key": API_KEY})
    assert refused.status_code == 422
    assert "body.kind: Field required" in refused.json()["error"]["message"]
    assert API_KEY not in refused.text


async def test_validating_a_reachable_provider_stores_its_catalog(
        api: ApiServer, fake_llm: FakeLLMServer) -> None:
    """validate reaches the provider with its key, stores its models, stamps validated_at."""
    await api.http.post("/api/admin/providers", headers=api.admin(), json={
        "name": "fake", "kind": "openai_compatible", "base_url": fake_llm.openai_url,
        "api_key": fake_llm.openai_key})
    checked = await api.http.post("/api/admin/providers/fake/validate", headers=api.admin())
    body = checked.json()
    assert (body["status"], body["models"], body["serving"]) == ("reachable", 2, True)
    assert body["validated_at"] is not None
    catalog = (await api.http.get("/api/llm/models", headers=api.auth())).json()["models"]
    assert [(m["provider"], m["model"], m["source"]) for m in catalog] == [
        ("fake", "model-a", "registry"), ("fake", "model-b", "registry"),
        ("echo", "echo-1", "builtin")]
    listed = (await api.http.get("/api/admin/providers", headers=api.admin())).json()
    assert listed["providers"][0]["validated_at"] == body["validated_at"]


async def test_validating_with_a_wrong_key_says_unauthorized_and_masks_it(
        api: ApiServer, fake_llm: FakeLLMServer) -> None:
    """The fake server quotes the wrong key back; the answer shows it masked only."""
    await api.http.post("/api/admin/providers", headers=api.admin(), json={
        "name": "fake", "kind": "openai_compatible", "base_url": fake_llm.openai_url,
        "api_key": API_KEY})
    checked = await api.http.post("/api/admin/providers/fake/validate", headers=api.admin())
    assert checked.json()["status"] == "unauthorized"
    assert API_KEY not in checked.text
    assert await api.rt.store.list_provider_models("fake") == []


async def test_validating_an_unusable_or_unknown_provider(api: ApiServer) -> None:
    """A provider that cannot be built says why; an unknown one is a 404."""
    await api.http.post("/api/admin/providers", headers=api.admin(),
                        json={"name": "nokey", "kind": "openai"})
    unusable = await api.http.post("/api/admin/providers/nokey/validate", headers=api.admin())
    assert unusable.json()["status"] == "unusable"
    assert "has no API key" in unusable.json()["detail"]
    missing = await api.http.post("/api/admin/providers/ghost/validate", headers=api.admin())
    assert missing.status_code == 404


async def test_a_provider_can_be_removed(api: ApiServer) -> None:
    """DELETE removes a provider; a second DELETE is a 404."""
    await api.http.post("/api/admin/providers", headers=api.admin(),
                        json={"name": "local", "kind": "ollama"})
    url = "/api/admin/providers/local"
    assert (await api.http.delete(url, headers=api.admin())).status_code == 204
    assert (await api.http.delete(url, headers=api.admin())).status_code == 404


async def test_global_and_tier_configs_drive_resolution(api: ApiServer) -> None:
    """A global config applies to every tier; a tier's own entry wins for that tier."""
    base = "/api/admin/llm/global/summarize"
    assert (await api.http.get(base, headers=api.admin())).status_code == 404
    every = await api.http.put(base, headers=api.admin(), json={
        "provider": "echo", "model": "echo-1", "parameters": {"temperature": 0.1}})
    assert every.json()["tier"] == "*"
    pro = await api.http.put(base, headers=api.admin(), params={"tier": "pro"}, json={
        "provider": "echo", "model": "echo-1", "parameters": {"temperature": 0.9}})
    assert pro.json()["tier"] == "pro"
    fallback = await api.http.get(base, headers=api.admin(), params={"tier": "enterprise"})
    assert fallback.json()["tier"] == "*"
    await api.http.put("/api/admin/users/ada/profile", headers=api.admin(),
                       json={"tier": "pro"})
    preview = (await api.http.get("/api/llm/config/preview", headers=api.auth("ada"),
                                  params={"task_type": "summarize"})).json()
    assert (preview["tier"], preview["parameters"]["temperature"]) == ("pro", 0.9)
    assert preview["sources"]["temperature"] == "tier_config"
    listed = (await api.http.get("/api/admin/llm/global", headers=api.admin())).json()
    assert [(c["task_type"], c["tier"]) for c in listed["configs"]] == [
        ("summarize", "*"), ("summarize", "pro")]


async def test_deleting_a_tier_config_falls_back_to_the_global_one(api: ApiServer) -> None:
    """DELETE removes exactly the entry named (admins only, 404 once gone), and the next
    resolution uses the layer below at once."""
    base = "/api/admin/llm/global/summarize"
    await api.http.put(base, headers=api.admin(), json={
        "provider": "echo", "model": "echo-1", "parameters": {"temperature": 0.1}})
    await api.http.put(base, headers=api.admin(), params={"tier": "pro"}, json={
        "provider": "echo", "model": "echo-1", "parameters": {"temperature": 0.9}})
    await api.http.put("/api/admin/users/ada/profile", headers=api.admin(),
                       json={"tier": "pro"})

    async def temperature() -> object:
        preview = await api.http.get("/api/llm/config/preview", headers=api.auth("ada"),
                                     params={"task_type": "summarize"})
        return preview.json()["parameters"].get("temperature")

    assert await temperature() == 0.9
    denied = await api.http.delete(base, headers=api.auth("ada"), params={"tier": "pro"})
    assert denied.status_code == 403
    gone = await api.http.delete(base, headers=api.admin(), params={"tier": "pro"})
    assert gone.status_code == 204
    assert await temperature() == 0.1
    again = await api.http.delete(base, headers=api.admin(), params={"tier": "pro"})
    assert again.status_code == 404
    assert (await api.http.delete(base, headers=api.admin())).status_code == 204
    assert await temperature() is None


async def test_an_unknown_tier_is_refused(api: ApiServer) -> None:
    """Tiers must be one of llm.tiers; the error lists them."""
    refused = await api.http.put("/api/admin/llm/global/chat", headers=api.admin(),
                                 params={"tier": "platinum"},
                                 json={"provider": "echo", "model": "echo-1"})
    assert refused.status_code == 400
    assert "'free', 'pro', 'enterprise'" in refused.json()["error"]["message"]
    profile = await api.http.put("/api/admin/users/ada/profile", headers=api.admin(),
                                 json={"tier": "platinum"})
    assert profile.status_code == 400


async def test_the_audit_log_is_newest_first_and_filterable(api: ApiServer) -> None:
    """Admins read config changes, newest first, for everyone or one user, limited."""
    await api.http.put("/api/users/ada/llm-config", headers=api.auth("ada"),
                       json={"provider": "echo", "model": "echo-1"})
    await api.http.put("/api/users/bob/llm-config", headers=api.auth("bob"),
                       json={"provider": "echo", "model": "echo-1"})
    everyone = (await api.http.get("/api/admin/audit", headers=api.admin())).json()
    assert [e["actor"] for e in everyone["entries"]] == ["bob", "bob", "ada", "ada"]
    ada = (await api.http.get("/api/admin/audit", headers=api.admin(),
                              params={"user_id": "ada", "limit": 1})).json()
    assert [(e["user_id"], e["entity"]) for e in ada["entries"]] == [
        ("ada", "user_llm_config")]


async def test_top_users_rank_by_tokens_or_requests(api: ApiServer) -> None:
    """The top-N list ranks users in the window."""
    for n, (user, tokens) in enumerate([("ada", 10), ("bob", 3), ("bob", 3)]):
        await api.rt.store.record(UsageEvent(request_id=f"r{n}", user_id=user,
                                             provider="echo", model="echo-1",
                                             prompt_tokens=tokens))
    by_tokens = (await api.http.get("/api/admin/usage/top", headers=api.admin())).json()
    assert [u["user_id"] for u in by_tokens["users"]] == ["ada", "bob"]
    by_requests = (await api.http.get("/api/admin/usage/top", headers=api.admin(),
                                      params={"by": "requests", "n": 1})).json()
    assert [u["user_id"] for u in by_requests["users"]] == ["bob"]


async def test_runtime_introspection_shows_sessions_tree_and_mailboxes(
        api: ApiServer) -> None:
    """Live sessions, the supervision tree (session contexts under their supervisor), actors."""
    for user, sid in (("ada", "a1"), ("bob", "b1")):
        await api.http.post("/api/sessions", json={"session_id": sid},
                            headers=api.auth(user))
    sessions = (await api.http.get("/api/admin/sessions", headers=api.admin())).json()
    assert sessions == {"sessions": [{"session_id": "a1", "user_id": "ada"},
                                     {"session_id": "b1", "user_id": "bob"}]}
    bobs = (await api.http.get("/api/admin/sessions", headers=api.admin(),
                               params={"user_id": "bob"})).json()
    assert [s["session_id"] for s in bobs["sessions"]] == ["b1"]
    view = (await api.http.get("/api/admin/runtime", headers=api.admin(),
                               params={"actors": 3})).json()
    assert view["sessions"] == 2
    assert len(view["busiest"]) == 3
    assert view["actors"] >= 8
    assert all(a["mailbox_depth"] >= 0 for a in view["busiest"])
    session_sup = _find(view["tree"], "session_sup")
    assert session_sup is not None
    assert session_sup["children_total"] == 2


def _find(node: dict[str, object], wanted: str) -> dict[str, object] | None:
    if node["id"] == wanted:
        return node
    children = node["children"]
    assert isinstance(children, list)
    for child in children:
        found = _find(child, wanted)
        if found is not None:
            return found
    return None
