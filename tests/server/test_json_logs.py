"""Logs as JSON lines, one access line per HTTP request, failures above INFO."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from beamish.request_log import LOGGER_NAME, LLMRequestLog, log_llm_request, write_request_lines
from beamish.server.access import LOGGER_NAME as ACCESS_LOGGER
from beamish.server.access import AccessObserver, mask_query
from beamish.server.serve import BeamishServer, configure_serving_logs
from beamish.settings import ServerSettings
from tests._serve import token

pytestmark = pytest.mark.anyio

ENTRY = LLMRequestLog(
    request_id="r1", user_id="ada", session_id="s1", endpoint="channel", stream=True,
    task_type="chat", provider="echo", model="echo-1", latency_ms=3, prompt_tokens=4,
    completion_tokens=6, outcome="ok")


ACCESS_PATH = "/v1/sk-abcdefghijklmnop"
"""A request path with a key-like segment: the access line masks it as any log line would."""


async def _one_access_line() -> None:
    """One request through the access observer: GET ACCESS_PATH?token=s3cret&q=1, 200."""
    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def received() -> Any:
        return {"type": "http.request", "body": b""}

    async def sent(message: Any) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": ACCESS_PATH,
             "query_string": b"token=s3cret&q=1", "client": ("127.0.0.1", 5)}
    await AccessObserver(answer, None)(scope, received, sent)


def _log_as_served(*, json_lines: bool) -> str:
    """Configure beamish serve's logging onto a string, log a request line, a failed one, a
    record with extras and an exception, then put logging back: what was written."""
    root, requests = logging.getLogger(), logging.getLogger(LOGGER_NAME)
    handlers, level, requests_level = root.handlers[:], root.level, requests.level
    knobs = {name: getattr(logging, name) for name in
             ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile")}
    stream = io.StringIO()
    root.handlers = []
    try:
        configure_serving_logs(stream, json=json_lines)
        log_llm_request(ENTRY)
        log_llm_request(ENTRY._replace(outcome="error", error="ProviderError"))
        test_log = logging.getLogger("beamish.test")
        test_log.info("hello %s", "you", extra={"user_id": "ada", "path": Path("/x")})
        try:
            raise ValueError("boom")
        except ValueError:
            test_log.exception("it failed")
        asyncio.run(_one_access_line())
    finally:
        write_request_lines(None)
        root.handlers, root.level = handlers, level
        requests.setLevel(requests_level)
        for name, value in knobs.items():
            setattr(logging, name, value)
    return stream.getvalue()


def test_json_format_writes_every_line_as_one_json_object() -> None:
    """Request lines and records alike: time, level, logger, message, then the extras."""
    lines = [json.loads(line) for line in _log_as_served(json_lines=True).splitlines()]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
               for line in lines)
    ok, failed, hello, failure, access = lines
    path = access["path"]  # the key-like segment masked (how, depends on the known keys)
    assert path.startswith("/v1/")
    assert path.endswith("****?token=***&q=1")
    assert "abcdefghijklmnop" not in path
    assert access == {
        "time": access["time"], "level": "INFO", "logger": ACCESS_LOGGER,
        "message": f"GET {path} 200 {access['duration_ms']}ms", "method": "GET",
        "path": path, "status": 200, "duration_ms": access["duration_ms"],
        "client": "127.0.0.1", "user_id": None}
    assert ok == {"time": ok["time"], "level": "INFO", "logger": LOGGER_NAME,
                  "message": "llm_request", "event": "llm_request", **ENTRY.fields()}
    assert (failed["level"], failed["outcome"], failed["error"]) == (
        "WARNING", "error", "ProviderError")
    assert hello == {"time": hello["time"], "level": "INFO", "logger": "beamish.test",
                     "message": "hello you", "user_id": "ada", "path": repr(Path("/x"))}
    assert failure["level"] == "ERROR"
    assert failure["message"] == "it failed"
    assert "ValueError: boom" in failure["exception"]


def test_a_failed_llm_request_is_a_warning_in_the_text_format_too() -> None:
    """The request log's failed line says WARNING, its ok line INFO."""
    written = _log_as_served(json_lines=False).splitlines()
    assert " INFO beamish.server.llm_requests {" in written[0]
    assert " WARNING beamish.server.llm_requests {" in written[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO beamish\.server\.access "
                        r"GET /v1/\S*\*\*\*\*\?token=\*\*\*&q=1 200 [\d.]+ms", written[-1])
    assert "abcdefghijklmnop" not in written[-1]


def test_log_format_is_text_unless_asked() -> None:
    """[server] log_format: text by default, json on request, nothing else."""
    assert ServerSettings().log_format == "text"
    assert ServerSettings(log_format="json").log_format == "json"
    with pytest.raises(ValueError, match="log_format"):
        ServerSettings(log_format="xml")  # type: ignore[arg-type]


def test_credential_like_query_values_are_masked() -> None:
    """token, api_key, secret, password...: the value becomes ***; other values stay."""
    assert mask_query("token=abc&user_id=ada") == "token=***&user_id=ada"
    assert mask_query("a=1&api_key=sk-1&Access_Token=x&password=p&sig=s") == (
        "a=1&api_key=***&Access_Token=***&password=***&sig=***")
    assert mask_query("") == ""


@pytest.fixture
def access_log() -> Iterator[list[logging.LogRecord]]:
    """The records of the access logger during the test."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_each_http_request_writes_one_access_line(
        beamish: BeamishServer, access_log: list[logging.LogRecord]) -> None:
    """Method, path with masked secrets, status, duration, client and the caller's user id."""
    secret = token("ada")
    async with httpx.AsyncClient(base_url=beamish.url) as http:
        await http.get("/health", params={"token": secret, "q": "1"})
        await http.get("/api/sessions", headers={"Authorization": f"Bearer {secret}"})
        await http.get("/api/sessions", headers={"Authorization": "Bearer nope.nope"})
    health, mine, refused = access_log
    fields: dict[str, Any] = health.__dict__
    assert (fields["method"], fields["path"], fields["status"]) == (
        "GET", "/health?token=***&q=1", 200)
    assert fields["client"] == "127.0.0.1"
    assert fields["duration_ms"] >= 0
    assert fields["user_id"] is None
    assert secret not in health.getMessage()
    assert health.getMessage().startswith("GET /health?token=***&q=1 200 ")
    assert (mine.__dict__["status"], mine.__dict__["user_id"]) == (200, "ada")
    assert (refused.__dict__["status"], refused.__dict__["user_id"]) == (401, None)
    assert all(r.levelno == logging.INFO for r in access_log)


def test_serve_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    """`beamish serve --log-format json`: every stderr line parses, the access line too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env["PYTHONUNBUFFERED"] = "1"
    with (tmp_path / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "beamish.cli", "serve", "--port", "0", "--log-format",
             "json"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    try:
        port = 0
        for line in process.stdout:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port
        assert httpx.get(f"http://127.0.0.1:{port}/health?token=s3cret").status_code == 200
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    lines = [json.loads(line) for line in (tmp_path / "stderr.log").read_text().splitlines()
             if line.startswith("{")]
    text = [line for line in (tmp_path / "stderr.log").read_text().splitlines()
            if not line.startswith("{") and not line.startswith("beamish: no BEAMISH_SECRET")]
    assert text == []
    [access] = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    assert (access["path"], access["status"], access["level"]) == (
        "/health?token=***", 200, "INFO")
    assert "s3cret" not in (tmp_path / "stderr.log").read_text()
