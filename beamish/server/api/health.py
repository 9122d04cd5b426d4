"""``GET /health`` (liveness) and ``GET /ready`` (readiness). No authentication.

They say nothing about users, sessions or providers: they are for load balancers and
orchestrators, which anyone may be.

* ``/health`` — is this process worth keeping? 200 ``{"status": "ok"}`` while the runtime
  runs; 503 ``{"status": "unavailable"}`` once it is not — also when its root supervisor
  exited for good (restart intensity exceeded), so an orchestrator restarts the process
  rather than leave it answering 503 to everything.
* ``/ready`` — should traffic come here now? 200 ``{"status": "ready", ...}`` only when the
  runtime runs, the store answers a cheap probe (``Store.ping`` within ``PROBE_TIMEOUT_S``,
  its outcome kept for ``PROBE_TTL_S`` so probes cannot load the database) and the store is
  not stalled (usage waiting with no write completing: ``Application.stalled_since``); else
  503 with ``"not_ready"`` and each reason in ``problems``.

``readiness(...)`` is the decision, without I/O.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from beamish.application import Application
from beamish.server.api.models import Out
from beamish.store import StoreError

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_S: Final = 1.0
"""How long ``/ready`` waits for the store to answer its probe."""

PROBE_TTL_S: Final = 1.0
"""How long a probe's outcome is reused."""

_PROBE_STATE: Final = "beamish_store_probe"


class Health(Out):
    """``ok`` when the runtime is running, ``unavailable`` (503) otherwise."""

    status: Literal["ok", "unavailable"]


class Readiness(Out):
    """Whether to send traffic here; ``problems`` says what is not ready (503)."""

    status: Literal["ready", "not_ready"]
    runtime: Literal["running", "stopped"]
    store: Literal["ok", "unavailable", "stalled"]
    stalled_for_s: float | None = None
    """How long usage has waited with no write completing, during a store stall."""
    problems: list[str] = Field(default_factory=list)


@router.get("/health", response_model=Health, responses={503: {"model": Health}},
            summary="Liveness: is the runtime running")
async def health(request: Request) -> Health | JSONResponse:
    """``{"status": "ok"}``, or 503 while the runtime is not running (stopped, or its root
    supervisor exited)."""
    if not _running(request):
        return JSONResponse(Health(status="unavailable").model_dump(), status_code=503)
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}},
            summary="Readiness: runtime running, store answering, no store stall")
async def ready(request: Request) -> Readiness | JSONResponse:
    """200 ``{"status": "ready", ...}`` when the runtime runs, the store answers and is not
    stalled; 503 ``{"status": "not_ready", "problems": [...]}`` otherwise."""
    runtime = _runtime(request)
    running = _running(request)
    store_error: str | None = "the runtime is not running"
    stalled_for: float | None = None
    if running and runtime is not None:
        store_error = await _probe(request, runtime)
        since = runtime.stalled_since
        if since is not None:
            stalled_for = asyncio.get_running_loop().time() - since
    answer = readiness(running=running, store_error=store_error, stalled_for_s=stalled_for)
    if answer.status != "ready":
        return JSONResponse(answer.model_dump(), status_code=503)
    return answer


def readiness(*, running: bool, store_error: str | None,
              stalled_for_s: float | None) -> Readiness:
    """The readiness answer from what was observed (no I/O)."""
    problems: list[str] = []
    if not running:
        problems.append("the beamish runtime is not running")
    store: Literal["ok", "unavailable", "stalled"] = "ok"
    if store_error is not None:
        store = "unavailable"
        if running:
            problems.append(f"the store does not answer: {store_error}")
    elif stalled_for_s is not None:
        store = "stalled"
        problems.append(f"the store is stalled: usage has waited {stalled_for_s:.1f} s "
                        "with no write completing")
    return Readiness(status="not_ready" if problems else "ready",
                     runtime="running" if running else "stopped", store=store,
                     stalled_for_s=None if stalled_for_s is None else round(stalled_for_s, 3),
                     problems=problems)


@dataclass(slots=True)
class _Probe:
    """The last store probe's outcome (None: answered) and when it was made."""

    at: float
    error: str | None


async def _probe(request: Request, runtime: Application) -> str | None:
    loop = asyncio.get_running_loop()
    last: _Probe | None = getattr(request.app.state, _PROBE_STATE, None)
    if last is not None and loop.time() - last.at < PROBE_TTL_S:
        return last.error
    error: str | None = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await runtime.store.ping()
    except TimeoutError:
        error = f"no answer within {PROBE_TIMEOUT_S} s"
    except StoreError as failure:
        error = str(failure)
    setattr(request.app.state, _PROBE_STATE, _Probe(loop.time(), error))
    return error


def _runtime(request: Request) -> Application | None:
    runtime: Any = getattr(request.app.state, "beamish", None)
    return runtime if isinstance(runtime, Application) else None


def _running(request: Request) -> bool:
    runtime = _runtime(request)
    return runtime is not None and runtime.running


__all__ = ["Health", "Readiness", "readiness", "router"]
