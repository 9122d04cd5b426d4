"""examples/chat_client.py as a person runs it: a subprocess against a real BeamishServer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from beamish.auth import TokenSigner
from beamish.server.serve import BeamishServer
from tests._serve import SECRET

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent


async def _chat(server: BeamishServer, stdin: str, *args: str,
                token: str | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "BEAMISH_TOKEN": token or TokenSigner(SECRET).issue("ada")}
    command = [sys.executable, "-m", "examples.chat_client",
               "--url", f"ws://127.0.0.1:{server.port}/socket/websocket", *args]
    with anyio.fail_after(60):
        done = await anyio.run_process(command, input=stdin.encode(), cwd=ROOT, env=env,
                                       check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_two_lines_stream_their_answers_then_leave(beamish: BeamishServer) -> None:
    """Each line's echo answer streams, a usage line follows it, EOF leaves cleanly."""
    status, out, err = await _chat(beamish, "hello there\nsecond line\n",
                                   "--conversation", "c1", "--session", "s1",
                                   "--heartbeat", "0.05")
    assert status == 0, err
    assert "joined conversation:c1 (session s1)" in out
    assert "[echo] hello there" in out
    assert "[echo] second line" in out
    assert out.count("(usage: ") == 2
    assert "completion tokens · echo/echo-1)" in out
    assert out.rstrip().endswith("left the conversation")
    assert "heartbeat failed" not in out
    totals = await beamish.runtime.store.session_totals("ada", "s1")
    assert totals.requests == 2


async def test_model_and_usage_commands(beamish: BeamishServer) -> None:
    """/model stores the default (the next answer uses it); /usage prints the totals."""
    lines = "/model echo:echo-fancy\nhi\n/usage\n/quit\nnot sent\n"
    status, out, err = await _chat(beamish, lines, "--session", "s2")
    assert status == 0, err
    assert "model: echo/echo-fancy" in out
    assert "echo/echo-fancy)" in out  # the answer's usage line names the new model
    assert "session: 1 requests" in out
    assert "not sent" not in out
    default = await beamish.runtime.users.get_default("ada")
    assert default is not None
    assert (default.provider, default.model) == ("echo", "echo-fancy")


async def test_a_bad_token_is_a_clear_error(beamish: BeamishServer) -> None:
    """A token the server refuses ends the client with status 1 and says why."""
    status, _, err = await _chat(beamish, "hello\n", token="not-a-token")
    assert status == 1
    assert "cannot talk to" in err
    assert "403" in err
