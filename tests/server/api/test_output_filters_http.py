"""GET /api/v1/llm_outputs filtered by ``template`` and ``model``, alone, together, with
``feedback`` and ``status``, and paged with ``cursor`` inside the filter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs._app import Events
from tests.server.api._support import ApiServer

pytestmark = pytest.mark.anyio

OUTPUTS = "/api/v1/llm_outputs"


async def _completed(api: ApiServer, events: Events, **body: Any) -> str:
    """The output id of a job enqueued over HTTP for ada, once it completed."""
    answer = await api.http.post("/api/v1/llm_jobs", headers=api.auth(), json=body)
    assert answer.status_code == 201, answer.text
    await events.wait("completed", job_id=answer.json()["job_id"])
    return str(answer.json()["output_id"])


async def _listed(api: ApiServer, **params: Any) -> tuple[list[str], int]:
    """Every output id the list gives ``params``, following ``next_cursor`` to the end, and
    the number of pages."""
    ids: list[str] = []
    pages = 0
    while True:
        answer = await api.http.get(OUTPUTS, headers=api.auth(), params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        ids += [o["output_id"] for o in page["outputs"]]
        pages += 1
        if page["next_cursor"] is None:
            return ids, pages
        params = {**params, "cursor": page["next_cursor"]}


async def test_outputs_filter_by_template_and_model_and_page_within_the_filter(
        api: ApiServer) -> None:
    """template= and model= keep only the caller's outputs that match, combine with each
    other, with feedback= and with status=; a cursor pages on inside the same filters."""
    created = await api.http.post("/api/admin/templates", headers=api.admin(), json={
        "name": "digest", "prompt": "Summarise {{ topic }}"})
    assert created.status_code == 201
    events = Events()
    unsubscribe = api.rt.jobs.subscribe(events)
    try:
        echo2 = {"overrides": {"model": "echo-2"}}
        plan: list[tuple[str | None, str, dict[str, Any]]] = [
            ("digest", "echo-1", {"template": "digest", "variables": {"topic": "a"}}),
            (None, "echo-1", {"prompt": "b"}),
            ("digest", "echo-2", {"template": "digest", "variables": {"topic": "c"}, **echo2}),
            (None, "echo-2", {"prompt": "d", **echo2}),
            ("digest", "echo-1", {"template": "digest", "variables": {"topic": "e"}}),
            ("digest", "echo-2", {"template": "digest", "variables": {"topic": "f"}, **echo2}),
        ]
        made = [(template, model, await _completed(api, events, **body))
                for template, model, body in plan]
        bob = await api.http.post("/api/v1/llm_jobs", headers=api.auth("bob"),
                                  json={"template": "digest", "variables": {"topic": "g"}})
        await events.wait("completed", job_id=bob.json()["job_id"])
    finally:
        unsubscribe()
    everything, _ = await _listed(api)
    assert sorted(everything) == sorted(output_id for _, _, output_id in made)

    def matching(template: str | None, model: str | None) -> list[str]:
        wanted = {output_id for t, m, output_id in made
                  if template in (None, t) and model in (None, m)}
        return [i for i in everything if i in wanted]

    for template, model, count in (("digest", None, 4), (None, "echo-2", 3),
                                   ("digest", "echo-2", 2), ("digest", "echo-1", 2),
                                   (None, "nope", 0)):
        params = {k: v for k, v in (("template", template), ("model", model)) if v}
        assert await _listed(api, **params) == (matching(template, model), 1)
        assert await _listed(api, **params, limit=1) == (
            matching(template, model), max(count, 1))
    assert await _listed(api, template="digest", model="echo-2", status="completed",
                         limit=1) == (matching("digest", "echo-2"), 2)
    assert await _listed(api, template="digest", status="failed") == ([], 1)
    rate = made[2][2], made[3][2]  # a digest and a raw prompt of echo-2
    for output_id in rate:
        answer = await api.http.put(f"{OUTPUTS}/{output_id}/feedback", headers=api.auth(),
                                    json={"rating": "up"})
        assert answer.status_code == 200
    assert await _listed(api, model="echo-2", feedback="up", limit=1) == (
        [i for i in everything if i in rate], 2)
    assert await _listed(api, template="digest", model="echo-2", feedback="up") == (
        [made[2][2]], 1)
    empty = await api.http.get(OUTPUTS, headers=api.auth(), params={"template": ""})
    assert empty.status_code == 422
