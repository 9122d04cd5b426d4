"""The runtime's root supervisor dies for good: ``beamish serve`` stops and exits non-zero, so a
process supervisor (systemd, Docker, Kubernetes) restarts it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beamish.runtime import KILL
from beamish.runtime.links import exit as send_exit
from tests._serve import SECRET, serve

pytestmark = [pytest.mark.faults, pytest.mark.timeout(40)]

# ``beamish serve`` (``beamish.cli.main``), with one fault injected once it serves: its root
# supervisor is killed, as when a child's restart intensity is exceeded.
_KILL_THE_ROOT_ONCE_SERVING = textwrap.dedent("""
    import sys
    from beamish.cli import main
    from beamish.runtime import KILL
    from beamish.runtime.links import exit
    from beamish.runtime.process import current_node
    from beamish.server import serve

    tune = serve.tune_for_serving

    def tune_then_kill_the_root() -> None:
        tune()
        exit(current_node().root, KILL)

    serve.tune_for_serving = tune_then_kill_the_root
    sys.exit(main(["serve", "--port", "0"]))
""")


@pytest.mark.anyio
async def test_wait_returns_failed_when_the_root_supervisor_dies(tmp_path: Path) -> None:
    """wait() returns once the root is gone, with failed True; after stop() it is False."""
    async with serve(tmp_path / "a") as server:
        root = server.runtime.node.root
        assert root is not None
        send_exit(root, KILL)
        await server.wait()
        assert server.failed
    async with serve(tmp_path / "b") as server:
        server.stop()
        await server.wait()
        assert not server.failed


def test_serve_exits_non_zero_when_the_root_supervisor_dies(tmp_path: Path) -> None:
    """The process logs the root's exit at ERROR, stops, and exits 1 (not 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env.update(PYTHONUNBUFFERED="1", BEAMISH_SECRET_KEY=SECRET,
               BEAMISH_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
               BEAMISH_SERVER__SHUTDOWN_TIMEOUT_S="3")
    done = subprocess.run([sys.executable, "-c", _KILL_THE_ROOT_ONCE_SERVING], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert "ERROR beamish.server the beamish runtime's root supervisor exited" in done.stderr, (
        done.stderr)
    assert done.returncode == 1, done.stderr
