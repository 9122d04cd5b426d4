"""Embedding beamish in a FastAPI app: the runtime lives as long as the app.

Run it with ``uvicorn examples.embed_fastapi:app`` with ``BEAMISH_SECRET_KEY`` set to a Fernet
key (``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``;
the app refuses to start without one) and ``BEAMISH_DATABASE_URL`` picking the database. The
host app owns its routes; ``mount_beamish`` adds beamish's HTTP API (``/api``, ``/v1``,
``/health``), the Phoenix socket (``/socket/websocket``) and the runtime behind them: sessions,
resolution with provenance, provider calls and exact usage.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import beamish
from beamish.server import mount_beamish
from beamish.sessions import SessionNotFoundError

app = FastAPI(title="beamish embedded")
mount_beamish(app)  # the API, the socket, and the runtime for the app's lifetime


class Ask(BaseModel):
    """A question in a session."""

    user_id: str
    content: str
    task_type: str = "chat"


def _runtime(request: Request) -> beamish.Application:
    runtime: beamish.Application = request.app.state.beamish
    return runtime


@app.post("/sessions/{user_id}")
async def open_session(user_id: str, request: Request) -> dict[str, Any]:
    """Open a new session for ``user_id``."""
    info = await _runtime(request).sessions.open(None, user_id)
    return {"session_id": info.session_id, "tier": info.tier}


@app.post("/sessions/{session_id}/ask")
async def ask(session_id: str, body: Ask, request: Request) -> dict[str, Any]:
    """Answer in the session, with the configuration's provenance and the usage."""
    rt = _runtime(request)
    try:
        result = await rt.complete(session_id, body.content, task_type=body.task_type,
                                   user_id=body.user_id)
    except SessionNotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
    return {
        "answer": result.completion.text,
        "provider": result.completion.provider,
        "model": result.completion.model,
        "offline": result.completion.offline,
        "provenance": {k: str(v) for k, v in result.config.sources.items()},
        "usage": result.completion.usage.model_dump(),
        "session_usage": (await rt.sessions.usage(session_id)).model_dump(),
    }
