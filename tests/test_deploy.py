"""The Dockerfile and compose.yaml, checked without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from beamish.cli import _parser
from beamish.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_image_is_python_slim_and_runs_as_a_user() -> None:
    """python:3.11-slim, a USER that is not root, set before the command."""
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [value for op, value in instructions if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_the_image_copies_what_exists_and_serves_on_every_address() -> None:
    """Every COPY source is in the repository; CMD is a serve the CLI accepts, on 0.0.0.0."""
    instructions = _instructions()
    for op, value in instructions:
        if op == "COPY":
            *sources, _ = value.split()
            assert all((ROOT / source).exists() for source in sources), value
    [command] = [json.loads(value) for op, value in instructions if op == "CMD"]
    assert command[:2] == ["beamish", "serve"]
    args = _parser().parse_args(command[1:])
    assert args.host == "0.0.0.0"
    assert args.log_format == "json"


def test_compose_runs_beamish_beside_a_healthy_postgresql(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid YAML; beamish waits for PostgreSQL's healthcheck and gets its URL and the key
    from variables the settings read."""
    services = _compose()["services"]
    db, app = services["db"], services["beamish"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    url = app["environment"]["BEAMISH_DATABASE_URL"]
    assert url.startswith("postgresql://")
    [env_file] = app["env_file"]
    example = (ROOT / f"{env_file}.example").read_text()
    assert re.search(r"^BEAMISH_SECRET_KEY=", example, re.MULTILINE)
    for name in ("DATABASE_URL", "SECRET_KEY"):
        monkeypatch.setenv(f"BEAMISH_{name}", "postgresql://x@db/beamish"
                           if name == "DATABASE_URL" else "k" * 44)
    settings = Settings()
    assert settings.database_url == "postgresql://x@db/beamish"
    assert settings.secret_key is not None
