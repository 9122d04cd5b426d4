"""LLM jobs and outputs over HTTP: enqueue (raw and template), uniqueness, listing, feedback,
re-run, regenerate, cancel, admin stats, and every error in the API's shape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamish.jobs import JobRequest, JobsSettings
from beamish.jobs.schedule import retry_policy
from beamish.store.models import GlobalConfig, ProviderRecord
from tests.jobs._app import Events
from tests.jobs._reads import Reads
from tests.server.api._support import ApiServer, make_settings, serve_api

pytestmark = pytest.mark.anyio

JOBS = "/api/v1/llm_jobs"
OUTPUTS = "/api/v1/llm_outputs"


@asynccontextmanager
async def recording(api: ApiServer) -> AsyncIterator[Events]:
    """The job events of the server's application while the block runs."""
    events = Events()
    unsubscribe = api.rt.jobs.subscribe(events)
    try:
        yield events
    finally:
        unsubscribe()


async def enqueue(api: ApiServer, user: str = "ada", **body: Any) -> httpx.Response:
    return await api.http.post(JOBS, headers=api.auth(user), json=body or {"prompt": "hi"})


async def completed(api: ApiServer, events: Events, user: str = "ada",
                    **body: Any) -> dict[str, Any]:
    """A job enqueued over HTTP, once it completed: its handle."""
    answer = await enqueue(api, user, **body)
    assert answer.status_code == 201, answer.text
    handle: dict[str, Any] = answer.json()
    await events.wait("completed", job_id=handle["job_id"])
    return handle


async def test_a_prompt_job_is_enqueued_runs_and_is_shown(api: ApiServer) -> None:
    """201 with the handle; the output completes with the echo answer and lists as ada's."""
    async with recording(api) as events:
        answer = await enqueue(api, prompt="hello there", format="markdown")
        assert answer.status_code == 201
        handle = answer.json()
        assert set(handle) == {"job_id", "output_id", "status", "state", "created",
                               "estimated_completion"}
        assert (handle["status"], handle["created"]) == ("pending", True)
        await events.wait("completed", job_id=handle["job_id"])
    shown = await api.http.get(f"{OUTPUTS}/{handle['output_id']}", headers=api.auth())
    assert shown.status_code == 200
    output = shown.json()
    assert (output["status"], output["format"], output["user_id"]) == (
        "completed", "markdown", "ada")
    assert "hello" in output["raw_response"]
    listed = (await api.http.get(OUTPUTS, headers=api.auth())).json()
    assert [o["output_id"] for o in listed["outputs"]] == [handle["output_id"]]
    assert listed["next_cursor"] is None


async def test_a_template_job_renders_through_the_applications_templates(
        api: ApiServer) -> None:
    """A template job enqueued over HTTP renders (no renderer set by the caller), completes,
    and takes its version's output format when it names none."""
    created = await api.http.post("/api/admin/templates", headers=api.admin(), json={
        "name": "digest", "prompt": "Summarise {{ topic }}", "system": "Be brief.",
        "output_format": "markdown"})
    assert created.status_code == 201
    async with recording(api) as events:
        handle = await completed(api, events, template="digest",
                                 variables={"topic": "tides"})
        own = await completed(api, events, template="digest", variables={"topic": "x"},
                              format="text")
    output = (await api.http.get(f"{OUTPUTS}/{handle['output_id']}",
                                 headers=api.auth())).json()
    assert (output["template_name"], output["template_version"], output["prompt"],
            output["system_prompt"], output["format"]) == (
        "digest", 1, "Summarise tides", "Be brief.", "markdown")
    assert "<p>" in output["parsed_output"]
    mine = (await api.http.get(f"{OUTPUTS}/{own['output_id']}", headers=api.auth())).json()
    assert mine["format"] == "text"


async def test_template_errors_are_422_naming_the_variable(api: ApiServer) -> None:
    """A missing variable is a 422 naming it, a sandbox refusal a 422 with its code, an
    unknown template a 404; nothing is enqueued."""
    await api.http.post("/api/admin/templates", headers=api.admin(), json={
        "name": "digest", "prompt": "Summarise {{ topic }}",
        "variables_schema": {"type": "object", "required": ["topic"]}})
    await api.http.post("/api/admin/templates", headers=api.admin(), json={
        "name": "escape", "prompt": "{{ ''.__class__.__mro__ }}"})
    missing = await enqueue(api, template="digest", variables={})
    assert missing.status_code == 422
    assert missing.json()["error"]["param"] == "variables"
    assert "topic" in missing.json()["error"]["message"]
    refused = await enqueue(api, template="escape")
    assert (refused.status_code, refused.json()["error"]["type"]) == (
        422, "template_render_error")
    unknown = await enqueue(api, template="nope")
    assert unknown.status_code == 404
    assert (await api.http.get(OUTPUTS, headers=api.auth())).json()["outputs"] == []


async def test_a_job_with_neither_template_nor_prompt_uses_the_configured_template(
        api: ApiServer) -> None:
    """With the task type's global config naming a template, a body with only variables
    renders it (201, recorded on the output); variables off its schema are a 422 naming
    the variable; a task type configured with no template is a 422 naming what is
    missing. Nothing is queued for the refused ones."""
    await api.http.post("/api/admin/templates", headers=api.admin(), json={
        "name": "digest", "prompt": "Digest of {{ topic }}", "task_type": "summarize",
        "variables_schema": {"type": "object", "required": ["topic"]}})
    await api.rt.store.set_global_config(GlobalConfig(
        task_type="summarize", provider="echo", model="echo-1", template="digest"))
    async with recording(api) as events:
        handle = await completed(api, events, task_type="summarize",
                                 variables={"topic": "tides"})
    output = (await api.http.get(f"{OUTPUTS}/{handle['output_id']}",
                                 headers=api.auth())).json()
    assert (output["template_name"], output["template_version"], output["prompt"],
            output["task_type"]) == ("digest", 1, "Digest of tides", "summarize")
    bad = await enqueue(api, task_type="summarize", variables={})
    assert (bad.status_code, bad.json()["error"]["param"]) == (422, "variables")
    assert "topic" in bad.json()["error"]["message"]
    missing = await enqueue(api, task_type="chat", variables={"topic": "x"})
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert (error["type"], error["param"]) == ("validation_error", "template")
    assert "no template and no prompt" in error["message"]
    assert "task type 'chat'" in error["message"]
    listed = (await api.http.get(OUTPUTS, headers=api.auth())).json()["outputs"]
    assert [o["output_id"] for o in listed] == [handle["output_id"]]


async def test_a_job_s_own_backoff_reaches_its_retry_policy(api: ApiServer) -> None:
    """backoff_base_s and backoff_cap_s of a body are the job's retry policy (stored in its
    request, and what the policy of the stored request says)."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    answer = await enqueue(api, prompt="x", run_at=later, backoff_base_s=0.5,
                           backoff_cap_s=2.0)
    assert answer.status_code == 201, answer.text
    output = await api.rt.jobs.get_output(answer.json()["output_id"])
    assert (output.request["backoff_base_s"], output.request["backoff_cap_s"]) == (0.5, 2.0)
    policy = retry_policy(api.rt.settings.jobs, JobRequest.model_validate(output.request))
    assert [policy.backoff.ceiling(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]


@pytest.mark.parametrize(("body", "status", "said"), [
    ({}, 422, "no template and no prompt"),
    ({"prompt": "x", "template": "t"}, 422, "either template"),
    ({"prompt": "x", "queue": "nope"}, 400, "queue 'nope'"),
    ({"prompt": "x", "format": "pdf"}, 422, "format"),
    ({"prompt": "x", "schema": {"type": 12}, "format": "json"}, 400, "schema"),
    ({"prompt": "x", "run_at": "2030-01-01T00:00:00"}, 422, "run_at"),
    ({"prompt": "x", "surprise": 1}, 422, "surprise"),
    ({"prompt": "x", "backoff_base_s": 0}, 422, "backoff_base_s"),
    ({"prompt": "x", "backoff_cap_s": -1}, 422, "backoff_cap_s"),
    ({"prompt": "x", "backoff_cap_s": 86_401}, 422, "backoff_cap_s"),
    ({"prompt": "x", "backoff_base_s": 10, "backoff_cap_s": 5}, 422,
     "backoff_base_s must be at most backoff_cap_s"),
    ({"prompt": "x", "backoff_base_s": 301}, 400, "above backoff_cap_s (300"),
])
async def test_bad_job_bodies_are_typed_errors(api: ApiServer, body: dict[str, Any],
                                               status: int, said: str) -> None:
    """Each bad body is a 400 or 422 saying what is wrong."""
    answer = await api.http.post(JOBS, headers=api.auth(), json=body)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]


async def test_a_unique_key_answers_the_existing_job_with_200(api: ApiServer) -> None:
    """The same unique key while the first is pending: 200, created false, the same ids."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    first = await enqueue(api, prompt="x", unique_key="k", run_at=later)
    second = await enqueue(api, prompt="y", unique_key="k")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["created"] is False
    assert (second.json()["job_id"], second.json()["output_id"]) == (
        first.json()["job_id"], first.json()["output_id"])


async def test_only_an_admin_enqueues_for_another_user(api: ApiServer) -> None:
    """ada naming bob is a 403; the admin naming bob makes bob's job."""
    refused = await enqueue(api, prompt="x", user_id="bob")
    assert refused.status_code == 403
    answer = await api.http.post(JOBS, headers=api.admin(),
                                 json={"prompt": "x", "user_id": "bob"})
    assert answer.status_code == 201
    output = await api.rt.jobs.get_output(answer.json()["output_id"])
    assert output.user_id == "bob"


async def test_users_act_only_on_their_own_outputs(api: ApiServer) -> None:
    """bob gets 403 for each of ada's outputs and jobs; unknown ids are 404."""
    async with recording(api) as events:
        handle = await completed(api, events)
    oid, jid = handle["output_id"], handle["job_id"]
    bob = api.auth("bob")
    calls = [("GET", f"{OUTPUTS}/{oid}", None),
             ("PUT", f"{OUTPUTS}/{oid}/feedback", {"rating": "up"}),
             ("GET", f"{OUTPUTS}/{oid}/feedback", None),
             ("POST", f"{OUTPUTS}/{oid}/rerun", None),
             ("POST", f"{OUTPUTS}/{oid}/regenerate", {"model": "m"}),
             ("POST", f"{JOBS}/{jid}/cancel", None)]
    for method, path, body in calls:
        answer = await api.http.request(method, path, headers=bob, json=body)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["error"]["type"] == "permission_denied"
        unknown = path.replace(oid, "f" * 32).replace(f"/{jid}/", "/999999/")
        answer = await api.http.request(method, unknown, headers=bob, json=body)
        assert answer.status_code == 404, (method, unknown)
    assert (await api.http.get(OUTPUTS, headers=bob)).json()["outputs"] == []


async def test_feedback_filters_and_admin_stats(api: ApiServer) -> None:
    """Feedback is stored and replaced; outputs filter by it; the stats count it per model."""
    async with recording(api) as events:
        first = await completed(api, events, prompt="one")
        second = await completed(api, events, prompt="two")
    path = f"{OUTPUTS}/{first['output_id']}/feedback"
    down = await api.http.put(path, headers=api.auth(), json={"rating": "down",
                                                               "reason": "vague"})
    assert (down.status_code, down.json()["rating"], down.json()["reason"]) == (
        200, "down", "vague")
    up = await api.http.put(path, headers=api.auth(), json={"rating": "up"})
    assert up.json()["rating"] == "up"
    bad = await api.http.put(path, headers=api.auth(), json={"rating": "meh"})
    assert bad.status_code == 422
    rated = (await api.http.get(OUTPUTS, headers=api.auth(),
                                params={"feedback": "up"})).json()
    assert [o["output_id"] for o in rated["outputs"]] == [first["output_id"]]
    done = (await api.http.get(OUTPUTS, headers=api.auth(),
                               params={"status": "completed", "limit": 1})).json()
    assert [o["output_id"] for o in done["outputs"]] == [second["output_id"]]
    after = (await api.http.get(OUTPUTS, headers=api.auth(), params={
        "status": "completed", "limit": 1, "cursor": done["next_cursor"]})).json()
    assert [o["output_id"] for o in after["outputs"]] == [first["output_id"]]
    stats = await api.http.get("/api/admin/llm_outputs/stats", headers=api.admin())
    assert [(s["up"], s["down"]) for s in stats.json()["stats"]] == [(1, 0)]
    assert (await api.http.get("/api/admin/llm_outputs/stats",
                               headers=api.auth())).status_code == 403


async def test_a_user_reads_their_rating_and_rates_only_completed_outputs(
        api: ApiServer) -> None:
    """GET .../feedback is a 404 until the caller rated the output, then the rating; a
    PUT on an output that has not completed is a 409 saying to rate it once completed."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with recording(api) as events:
        done = await completed(api, events, prompt="one")
    path = f"{OUTPUTS}/{done['output_id']}/feedback"
    unrated = await api.http.get(path, headers=api.auth())
    assert (unrated.status_code, unrated.json()["error"]["type"]) == (404, "not_found")
    put = await api.http.put(path, headers=api.auth(), json={"rating": "down",
                                                              "reason": "vague"})
    assert put.status_code == 200
    shown = await api.http.get(path, headers=api.auth())
    assert shown.status_code == 200
    assert {k: shown.json()[k] for k in ("output_id", "user_id", "rating", "reason")} == {
        "output_id": done["output_id"], "user_id": "ada", "rating": "down",
        "reason": "vague"}
    pending = (await enqueue(api, prompt="later", run_at=later)).json()
    early = await api.http.put(f"{OUTPUTS}/{pending['output_id']}/feedback",
                               headers=api.auth(), json={"rating": "up"})
    assert (early.status_code, early.json()["error"]["type"]) == (409, "conflict")
    assert "rate it once it has completed" in early.json()["error"]["message"]


async def test_values_a_job_cannot_use_are_422_naming_the_field(
        api: ApiServer) -> None:
    """NaN in variables (Python's JSON reads it) is a 422 naming variables; overrides
    naming a provider that is switched off a 422 naming it (param overrides); a regenerate
    with variables of a raw-prompt output a 422 (param variables). Nothing is queued."""
    await api.rt.store.register_provider(ProviderRecord(name="off", kind="openai",
                                                        enabled=False))
    nan = await api.http.post(JOBS, headers={**api.auth(), "content-type": "application/json"},
                              content=b'{"prompt": "x", "variables": {"n": NaN}}')
    unusable = await enqueue(api, prompt="x",
                             overrides={"provider": "openai", "model": "gpt-4o"})
    listed = (await api.http.get(OUTPUTS, headers=api.auth())).json()["outputs"]
    async with recording(api) as events:
        parent = await completed(api, events, prompt="raw")
    regen = await api.http.post(f"{OUTPUTS}/{parent['output_id']}/regenerate",
                                headers=api.auth(), json={"variables": {"a": 1}})
    for answer, param, said in ((nan, "variables", "variables.n: nan"),
                                (unusable, "overrides", "openai:gpt-4o"),
                                (regen, "variables", "ran a raw prompt")):
        error = answer.json()["error"]
        assert (answer.status_code, error["type"], error["param"]) == (
            422, "validation_error", param)
        assert said in error["message"]
    assert listed == []


async def test_a_checked_template_rendering_too_long_a_prompt_is_422(
        tmp_path: Path) -> None:
    """Under [jobs] max_prompt_chars 50, a template job whose variables render 60
    characters is a 422 naming variables and the limit."""
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"jobs": JobsSettings(max_prompt_chars=50)})
    async with serve_api(tmp_path, settings=settings) as api:
        await api.http.post("/api/admin/templates", headers=api.admin(),
                            json={"name": "digest", "prompt": "Summarise {{ text }}"})
        answer = await enqueue(api, template="digest", variables={"text": "x" * 50})
    error = answer.json()["error"]
    assert (answer.status_code, error["param"]) == (422, "variables")
    assert "rendered 60 characters" in error["message"]
    assert "max_prompt_chars" in error["message"]


async def test_rerun_and_regenerate_link_new_jobs_to_their_parent(api: ApiServer) -> None:
    """Re-run repeats the request; regenerate changes the model; both name the parent."""
    async with recording(api) as events:
        parent = await completed(api, events, prompt="again")
        path = f"{OUTPUTS}/{parent['output_id']}"
        rerun = await api.http.post(f"{path}/rerun", headers=api.auth())
        regen = await api.http.post(f"{path}/regenerate", headers=api.auth(),
                                    json={"model": "echo-2", "parameters": {"temperature": 0.2}})
        assert (rerun.status_code, regen.status_code) == (201, 201)
        await events.wait("completed", job_id=rerun.json()["job_id"])
        await events.wait("completed", job_id=regen.json()["job_id"])
        nothing = await api.http.post(f"{path}/regenerate", headers=api.auth(), json={})
    assert nothing.status_code == 400
    again = await api.rt.jobs.get_output(rerun.json()["output_id"])
    changed = await api.rt.jobs.get_output(regen.json()["output_id"])
    assert (again.parent_output_id, again.relation, again.prompt) == (
        parent["output_id"], "rerun", "again")
    assert (changed.relation, changed.model) == ("regenerate", "echo-2")
    assert changed.parameters is not None
    assert changed.parameters["temperature"] == 0.2


async def test_regenerate_with_new_variables_renders_the_parents_version(
        api: ApiServer) -> None:
    """Regenerate with variables over HTTP: the parent's template version renders them
    (not the version served now); variables off that version's schema are a 422."""
    template = {"name": "digest", "prompt": "One {{ topic }}",
                "variables_schema": {"type": "object", "required": ["topic"]}}
    await api.http.post("/api/admin/templates", headers=api.admin(), json=template)
    async with recording(api) as events:
        parent = await completed(api, events, template="digest", variables={"topic": "a"})
        await api.http.post("/api/admin/templates", headers=api.admin(),
                            json={"name": "digest", "prompt": "Two {{ topic }}"})
        path = f"{OUTPUTS}/{parent['output_id']}/regenerate"
        regen = await api.http.post(path, headers=api.auth(),
                                    json={"variables": {"topic": "b"}})
        assert regen.status_code == 201, regen.text
        await events.wait("completed", job_id=regen.json()["job_id"])
        refused = await api.http.post(path, headers=api.auth(), json={"variables": {}})
    changed = await api.rt.jobs.get_output(regen.json()["output_id"])
    assert (changed.template_version, changed.prompt, changed.variables) == (
        1, "One b", {"topic": "b"})
    assert refused.status_code == 422
    assert "topic" in refused.json()["error"]["message"]


async def test_a_pending_job_is_cancelled(api: ApiServer) -> None:
    """A scheduled job cancelled over HTTP: its output is cancelled; cancelling again keeps
    it so."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    handle = (await enqueue(api, prompt="x", run_at=later)).json()
    answer = await api.http.post(f"{JOBS}/{handle['job_id']}/cancel", headers=api.auth())
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    again = await api.http.post(f"{JOBS}/{handle['job_id']}/cancel", headers=api.auth())
    assert again.json()["status"] == "cancelled"


async def test_the_per_user_cap_is_429(tmp_path: Path) -> None:
    """Past [jobs] max_unfinished_per_user, an enqueue is a 429 saying the limit."""
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"jobs": JobsSettings(max_unfinished_per_user=2)})
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with serve_api(tmp_path, settings=settings) as api:
        for _ in range(2):
            assert (await enqueue(api, prompt="x", run_at=later)).status_code == 201
        answer = await enqueue(api, prompt="x", run_at=later)
        other = await enqueue(api, "bob", prompt="x", run_at=later)
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "job_limit"
    assert "max_unfinished_per_user" in answer.json()["error"]["message"]
    assert other.status_code == 201


async def test_a_long_poll_answers_once_the_output_has_ended(api: ApiServer) -> None:
    """``wait_s`` holds the answer until the output ends, or answers it as it is once the
    wait is over; a wait beyond the bound is a 422."""
    handle = (await enqueue(api, prompt="long poll")).json()
    url = f"{OUTPUTS}/{handle['output_id']}"
    ended = await api.http.get(url, params={"wait_s": 30}, headers=api.auth(), timeout=40)
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "completed"
    later = (await enqueue(api, prompt="later", run_at=(
        datetime.now(UTC) + timedelta(hours=1)).isoformat())).json()
    pending = await api.http.get(f"{OUTPUTS}/{later['output_id']}",
                                 params={"wait_s": 0.001}, headers=api.auth())
    assert (pending.status_code, pending.json()["status"]) == (200, "pending")
    too_long = await api.http.get(url, params={"wait_s": 61}, headers=api.auth())
    assert too_long.status_code == 422
    other = await api.http.get(url, params={"wait_s": 1}, headers=api.auth("eve"))
    assert other.status_code == 403


async def test_long_polls_past_the_user_s_bound_are_429(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With [jobs] max_waits_per_user 1, a second long poll of ada while her first waits
    is a 429 (code wait_limit) saying the setting; the first answers once the job is
    cancelled."""
    settings = make_settings(tmp_path)
    settings = settings.model_copy(update={"jobs": JobsSettings(max_waits_per_user=1)})
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with serve_api(tmp_path, settings=settings) as api:
        handle = (await enqueue(api, prompt="x", run_at=later)).json()
        url = f"{OUTPUTS}/{handle['output_id']}"
        reads = Reads(monkeypatch, api.rt.store)
        first = asyncio.ensure_future(api.http.get(url, params={"wait_s": 30},
                                                   headers=api.auth(), timeout=40))
        await reads.reached(1)
        second = await api.http.get(url, params={"wait_s": 30}, headers=api.auth())
        await api.http.post(f"{JOBS}/{handle['job_id']}/cancel", headers=api.auth())
        answered = await first
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "wait_limit"
    assert "max_waits_per_user" in second.json()["error"]["message"]
    assert (answered.status_code, answered.json()["status"]) == (200, "cancelled")
