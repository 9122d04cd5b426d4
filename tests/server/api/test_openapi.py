"""The OpenAPI document: a unique, human summary per operation, every error documented, and
405 answers that list every method of the path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from beamish.server.api import create_app
from beamish.server.api.openapi import document_errors, statuses_of

pytestmark = pytest.mark.anyio

ALL_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


@pytest.fixture
def schema() -> dict[str, Any]:
    """The standalone app's OpenAPI document."""
    return create_app().openapi()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the standalone app (a 405 is decided before any runtime is needed)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()),
                                 base_url="http://127.0.0.1") as client:
        yield client


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, operations in schema["paths"].items()
            for method, operation in operations.items()]


def test_every_operation_has_its_own_written_summary(schema: dict[str, Any]) -> None:
    """Summaries are written, not FastAPI's title-cased function names, and all differ."""
    summaries = [op["summary"] for _, _, op in _operations(schema)]
    generated = {op["operationId"].split("_api_")[0].split("_v1_")[0].replace("_", " ").title()
                 for _, _, op in _operations(schema)}
    assert [s for s in summaries if s in generated] == []
    assert len(set(summaries)) == len(summaries)


def test_each_authenticated_operation_documents_its_errors(schema: dict[str, Any]) -> None:
    """401/403/422 and 503 everywhere; 404 with a path id; 409 on writes; 413 with a body."""
    for path, method, operation in _operations(schema):
        documented = set(operation["responses"])
        if path in ("/health", "/ready"):  # unauthenticated: for load balancers
            continue
        assert {"401", "403", "422", "503"} <= documented, (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)
        if method in ("put", "post"):
            assert "409" in documented, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= documented, (method, path)
        error = operation["responses"]["404" if "404" in documented else "503"]
        assert error["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"}


def test_completions_document_the_providers_failures(schema: dict[str, Any]) -> None:
    """Both completion operations may answer 400, 404, 429, 502 and 504 besides the rest."""
    for path in ("/v1/chat/completions", "/api/sessions/{session_id}/completions"):
        assert {"400", "404", "429", "502", "504"} <= set(schema["paths"][path]["post"]
                                                          ["responses"])


def test_document_errors_is_pure_and_leaves_public_operations_alone() -> None:
    """It returns a copy; an operation without 401 (public) gains nothing."""
    given: dict[str, Any] = {"paths": {"/health": {"get": {"responses": {"200": {}}}},
                       "/x/{id}": {"put": {"responses": {"401": {}}, "requestBody": {}}}}}
    documented = document_errors(given)
    assert given["paths"]["/x/{id}"]["put"]["responses"] == {"401": {}}
    assert documented["paths"]["/health"]["get"]["responses"] == {"200": {}}
    assert sorted(documented["paths"]["/x/{id}"]["put"]["responses"]) == [
        "400", "401", "404", "409", "413", "503"]
    assert statuses_of("/a", "get", {}) == [503]
    # One session: an admin naming no user gets a 409 when several users hold the id.
    assert statuses_of("/api/sessions/{session_id}", "delete", {}) == [404, 409, 503]


async def test_405_allows_every_method_of_the_path(http: httpx.AsyncClient,
                                                    schema: dict[str, Any]) -> None:
    """For every path, a method it does not serve is a 405 whose Allow lists all it does."""
    for template, operations in schema["paths"].items():
        path = re.sub(r"\{[^}]+\}", "x", template)
        served = sorted(m.upper() for m in operations)
        refused = next(m for m in ALL_METHODS if m not in served)
        answer = await http.request(refused, path)
        assert answer.status_code == 405, (refused, path)
        assert answer.headers["allow"] == ", ".join(served), path
        body = answer.json()["error"]
        assert body["type"] == "method_not_allowed"
        assert body["message"] == f"{refused} is not allowed on {path}; use {', '.join(served)}"
