"""`beamish serve` as users run it: a subprocess on a fresh directory, stopped with SIGTERM."""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from beamish.request_log import (
    LOGGER_NAME,
    LLMRequestLog,
    log_llm_request,
    write_request_lines,
)
from beamish.server.serve import (
    SERVING_GC_THRESHOLDS,
    SERVING_SWITCH_INTERVAL_S,
    configure_serving_logs,
    tune_for_serving,
)
from beamish.settings import ServerSettings

pytestmark = pytest.mark.anyio


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cli(cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "beamish.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`beamish serve --port 0` in an empty directory: no key, no database, no config."""
    with (tmp_path / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=tmp_path,
            env=_env(), stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    port = 0
    for line in process.stdout:
        found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if found:
            port = int(found.group(1))
            break
    assert port, "the server did not say where it listens"
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


async def test_serve_answers_then_stops_in_order_on_sigterm(
        served: tuple[subprocess.Popen[str], int], tmp_path: Path) -> None:
    """A fresh directory serves HTTP and channels; SIGTERM closes sockets with 1001, exits 0."""
    process, port = served
    token = _cli(tmp_path, "token", "create", "--user", "ada").strip()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/health")).status_code == 200
        web = await http.get("/")  # the web app, at /: its pages ask to sign in first
        assert (web.status_code, web.headers["location"]) == (303, "/sign-in?next=%2F")
    url = f"ws://127.0.0.1:{port}/socket/websocket?token={token}&vsn=2.0.0"
    async with connect(url) as ws:
        await ws.send(json.dumps(["1", "1", "conversation:c1", "phx_join", {"session_id": "s1"}]))
        assert json.loads(await ws.recv())[4]["status"] == "ok"  # joined
        await ws.send(json.dumps(["1", "2", "conversation:c1", "message", {"content": "hi"}]))
        while True:
            frame = json.loads(await ws.recv())
            if frame[3] == "done":
                break
        listed = _cli(tmp_path, "sessions", "--server", f"http://127.0.0.1:{port}")
        assert re.search(r"s1\s+ada", listed)
        process.send_signal(signal.SIGTERM)
        await ws.wait_closed()
        assert ws.close_code == 1001
    assert process.wait(timeout=30) == 0
    log = (tmp_path / "stderr.log").read_text()
    assert "INFO beamish.server event loop: uvloop " in log  # installed: auto picks it
    assert token not in log  # uvicorn logs socket URLs: the token is masked
    assert "token=***" in log
    request = re.search(r"INFO beamish\.server\.llm_requests (\{.*\})\n", log)
    assert request is not None  # the message's request log line
    assert json.loads(request[1]) | {"latency_ms": 0} == json.loads(request[1]) | {
        "user_id": "ada", "session_id": "s1", "endpoint": "channel", "outcome": "ok",
        "latency_ms": 0}
    assert re.search(r"requests.*\n.*\n\s*1\b", _cli(tmp_path, "usage", "--user", "ada"))


def test_config_set_then_get_shows_provenance(tmp_path: Path) -> None:
    """config set stores a default; config get explains where each value comes from."""
    _cli(tmp_path, "config", "set", "--user", "ada", "--provider", "echo", "--model", "echo-2")
    shown = _cli(tmp_path, "config", "get", "--user", "ada")
    assert "model: echo-2 (user_default)" in shown
    assert "stored: echo:echo-2 (default)" in shown
    override = _cli(tmp_path, "config", "set", "--user", "ada", "--provider", "echo",
                    "--model", "echo-code", "--task", "code")
    assert "model: echo-code (user_task_override)" in override


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    """An unknown provider is refused with a message, not a traceback."""
    done = subprocess.run([sys.executable, "-m", "beamish.cli", "config", "set", "--user", "ada",
                           "--provider", "nope", "--model", "m"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("beamish config:")
    assert "Traceback" not in done.stderr


def test_tune_for_serving_freezes_the_heap_and_shortens_the_switch_interval() -> None:
    """What beamish serve does once started: a frozen startup heap, higher thresholds, and
    a shorter GIL switch interval."""
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_for_serving()
        assert gc.get_threshold() == SERVING_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(SERVING_SWITCH_INTERVAL_S)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.setswitchinterval(interval)


def _log_as_served(request_log: bool) -> tuple[str, list[logging.LogRecord]]:
    """Configure beamish serve's logging onto a string, write a request line and a record,
    then put logging back: what was written, and the records the handler saw."""
    root, requests = logging.getLogger(), logging.getLogger(LOGGER_NAME)
    handlers, level, requests_level = root.handlers[:], root.level, requests.level
    knobs = {name: getattr(logging, name) for name in
             ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile")}
    records: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        records.append(record)
        return True

    stream = io.StringIO()
    root.handlers = []
    try:
        configure_serving_logs(stream, request_log=request_log)
        root.handlers[0].addFilter(keep)
        log_llm_request(LLMRequestLog(
            request_id="r1", user_id="ada", session_id="s1", endpoint="channel", stream=True,
            task_type="chat", provider="echo", model="echo-1", latency_ms=3, prompt_tokens=4,
            completion_tokens=6, outcome="ok"))
        logging.getLogger("beamish.test").info("hello")
    finally:
        write_request_lines(None)
        root.handlers, root.level = handlers, level
        requests.setLevel(requests_level)
        for name, value in knobs.items():
            setattr(logging, name, value)
    return stream.getvalue(), records


def test_serving_logs_write_request_lines_and_records_without_thread_process_or_caller(
        ) -> None:
    """INFO lines as time, level, logger, message, the request log's among them; records
    carry no thread, process or caller (the format never shows them)."""
    written, records = _log_as_served(request_log=True)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(
        f"{stamp} INFO beamish\\.server\\.llm_requests "
        r'\{"event":"llm_request","request_id":"r1",.*"outcome":"ok","error":null\}\n'
        f"{stamp} INFO beamish\\.test hello\n", written)
    [record] = records  # the request line was no record
    assert (record.threadName, record.processName, record.process) == (None, None, None)
    assert (record.pathname, record.lineno) == ("(unknown file)", 0)


def test_serving_logs_can_leave_the_request_lines_out() -> None:
    """[server] request_log = false: no request line; the other INFO lines as before."""
    written, records = _log_as_served(request_log=False)
    assert written.endswith(" INFO beamish.test hello\n")
    assert "llm_request" not in written
    assert len(records) == 1
    assert ServerSettings().request_log
    assert not ServerSettings(request_log=False).request_log

