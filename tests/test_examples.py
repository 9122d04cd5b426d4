"""The examples run: the embedding script end to end, the FastAPI app through its lifespan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

ROOT = Path(__file__).parent.parent


def test_embed_script_runs_to_the_end(tmp_path: Path) -> None:
    """The script chats and prints provenance and usage from a fresh SQLite file."""
    done = subprocess.run(
        [sys.executable, "-m", "examples.embed_script", "--database",
         f"sqlite:///{tmp_path / 'example.db'}"],
        # Run in the test's empty directory: a beamish.toml in the checkout must not count.
        cwd=Path.cwd(), env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "[echo]" in done.stdout
    assert "model: echo-1 (user_default)" in done.stdout
    assert "session usage: 2 requests" in done.stdout


def test_jobs_quickstart_runs_to_the_end(tmp_path: Path) -> None:
    """The jobs example renders its configured template, waits for both jobs, and counts
    its feedback."""
    done = subprocess.run(
        [sys.executable, "-m", "examples.jobs_quickstart", "--database",
         f"sqlite:///{tmp_path / 'jobs.db'}"],
        cwd=Path.cwd(), env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "completed: [echo] Summarise supervision trees in 30 words." in done.stdout
    assert "template summary v1, model echo-1" in done.stdout
    assert ": completed" in done.stdout.split("re-run of", 1)[1]
    assert "feedback on summary v1 (echo-1): 1 up, 0 down" in done.stdout


def test_embed_fastapi_serves_through_its_lifespan(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The host app opens a session and answers in it; unknown sessions are a 404."""
    monkeypatch.setenv("BEAMISH_DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    monkeypatch.setenv("BEAMISH_SECRET_KEY", Fernet.generate_key().decode())
    from examples.embed_fastapi import app

    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # beamish's API, mounted beside
        assert any(getattr(r, "path", "") == "/socket/websocket" for r in app.routes)
        sid = client.post("/sessions/ada").json()["session_id"]
        answer = client.post(f"/sessions/{sid}/ask", json={"user_id": "ada", "content": "hi"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["offline"] is True
        assert body["session_usage"]["requests"] == 1
        missing = client.post("/sessions/nope/ask", json={"user_id": "ada", "content": "hi"})
        assert missing.status_code == 404
