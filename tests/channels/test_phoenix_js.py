"""The official ``phoenix`` JS client (npm, 1.8.x), unmodified, against a real BeamishServer.

``tests/channels/js/conversation.mjs`` drives the client's own API — ``new Socket`` with
``params.token`` and with ``authToken`` (the subprotocol), ``channel.join()``, ``push``,
``on("token")``/``on("done")``, heartbeats, ``leave()`` — and prints a JSON summary that the
test below asserts on. The node packages come from the committed ``package-lock.json``, through
``npm ci`` into a temporary folder once per test session.

Without node or npm the test is skipped, except in CI (``CI=true``), where that is a failure:
``.ci/run`` makes sure both are there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from beamish.auth import TokenSigner
from beamish.server.serve import BeamishServer
from tests._serve import SECRET

JS_DIR = Path(__file__).parent / "js"
SCRIPT = "conversation.mjs"


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm))
                               if path is None)
        reason = f"{missing} not found on PATH: the phoenix JS client test needs Node.js >= 18"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: .ci/run must install them)")
        pytest.skip(reason)
    return node, npm


@pytest.fixture(scope="session")
def phoenix_js(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """node, and a folder holding the script beside ``npm ci``'s node_modules."""
    node, npm = _tools()
    folder = tmp_path_factory.mktemp("phoenix-js")
    for name in ("package.json", "package-lock.json", SCRIPT):
        shutil.copy(JS_DIR / name, folder / name)
    done = subprocess.run(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node, folder


async def _run_client(phoenix_js: tuple[str, Path], server: BeamishServer) -> dict[str, Any]:
    node, folder = phoenix_js
    signer = TokenSigner(SECRET)
    env = {**os.environ,
           "BEAMISH_SOCKET_URL": f"ws://127.0.0.1:{server.port}/socket",
           "BEAMISH_TOKEN": signer.issue("ada"),
           "BEAMISH_OTHER_TOKEN": signer.issue("eve"),
           "BEAMISH_BAD_TOKEN": TokenSigner("another-secret-0123456789abcdef").issue("ada")}
    with anyio.fail_after(60):
        done = await anyio.run_process([node, SCRIPT], cwd=folder, env=env, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"the phoenix client run failed:\n{stdout}\n{stderr}"
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return summary


@pytest.mark.anyio
async def test_the_official_phoenix_client_chats_unmodified(
        phoenix_js: tuple[str, Path], beamish: BeamishServer) -> None:
    """Join, stream, errors, cancel, heartbeats, leave and both auth styles through phoenix.js."""
    s = await _run_client(phoenix_js, beamish)
    assert s["steps"][-1] == "end"
    _check_chat(s)
    _check_errors_and_cancel(s)
    _check_socket(s)
    _check_auth(s)
    await beamish.runtime.services.current_recorder().wait_flushed()  # the cancelled answer's
    usage = await beamish.runtime.store.session_totals("ada", "s1")
    assert usage.requests == 4  # three answers and the cancelled one, each recorded


def _check_chat(s: dict[str, Any]) -> None:
    assert s["join"] == {"status": "ok", "response": {"conversation_id": "c1",
                                                      "session_id": "s1", "last_id": 0}}
    message = s["message"]
    assert message["sent"]["status"] == "ok"
    assert message["sent"]["response"] == {"request_id": message["request_id"]}
    assert message["event"] == "done"
    assert message["tokens"] > 0
    assert "hello from phoenix.js" in message["text"]
    done = message["payload"]
    assert done["request_id"] == message["request_id"]
    assert done["provider"] == "echo"
    assert done["usage"]["completion_tokens"] > 0
    assert s["set_preference"]["status"] == "ok"
    assert s["get_config"]["response"]["model"] == "echo-js"
    assert s["after_preference"]["payload"]["model"] == "echo-js"


def _check_errors_and_cancel(s: dict[str, Any]) -> None:
    bad = s["bad"]
    assert bad["empty"]["status"] == "error"
    assert bad["empty"]["response"]["reason"] == "bad_request"
    assert "content" in bad["empty"]["response"]["detail"]
    assert "temperature" in bad["temperature"]["response"]["detail"]
    assert bad["unknown"] == {"status": "error", "response": {
        "reason": "unknown event", "detail": "conversation:c1 does not handle event 'dance'"}}
    assert s["cancel"]["reply"]["status"] in ("ok", "error")  # error only if it had finished
    if s["cancel"]["reply"]["status"] == "ok":
        assert s["cancel"]["end"] == {"event": "error", "payload": {
            "request_id": s["cancel"]["end"]["payload"]["request_id"], "reason": "cancelled"}}


def _check_socket(s: dict[str, Any]) -> None:
    assert s["protocol"] == ""  # no subprotocol offered, none selected
    assert s["leave"] == {"status": "ok", "response": {}}
    assert s["channel_closed"] is True
    assert s["params_socket"] == {"opens": 1, "closes": [1000], "errors": 0}
    heartbeats = s["heartbeats"]
    assert heartbeats["matched"] >= 3  # replies carrying the refs of the client's heartbeats
    assert heartbeats["errors"] == 0
    assert isinstance(s["ping_ms"], int)  # Socket.ping resolves on the reply to its own ref


def _check_auth(s: dict[str, Any]) -> None:
    auth = s["auth_token"]
    assert auth["protocol"] == "phoenix"
    assert auth["join"]["response"]["session_id"] == "s1"
    assert auth["message"]["event"] == "done"
    assert "over the subprotocol" in auth["message"]["text"]
    assert auth["usage"]["status"] == "ok"
    assert auth["leave"]["status"] == "ok"
    assert auth["socket"]["opens"] == 1
    # Conversation ids are per user: the other user's c1 is a new, empty conversation.
    assert s["foreign_join"]["status"] == "ok"
    assert s["foreign_join"]["response"]["last_id"] == 0
    assert s["bad_token"]["errors"] >= 1
    assert s["bad_token"]["opens"] == 0
    assert s["bad_token"]["connected"] is False
