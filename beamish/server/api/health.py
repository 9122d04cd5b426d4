"""``GET /health``: whether the server is up and its runtime running. No authentication.

It says nothing about users, sessions or providers: it is for load balancers and
orchestrators, which anyone may be.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from beamish.server.api.models import Out

router = APIRouter(tags=["health"])


class Health(Out):
    """``ok`` when the runtime is running, ``unavailable`` (503) otherwise."""

    status: Literal["ok", "unavailable"]


@router.get("/health", summary="Liveness",
            response_model=Health, responses={503: {"model": Health}})
async def health(request: Request) -> Health | JSONResponse:
    """``{"status": "ok"}``, or 503 while the runtime is not running."""
    runtime = getattr(request.app.state, "beamish", None)
    try:
        running = runtime is not None and runtime.services is not None
    except RuntimeError:
        running = False
    if not running:
        return JSONResponse(Health(status="unavailable").model_dump(), status_code=503)
    return Health(status="ok")


__all__ = ["Health", "router"]
