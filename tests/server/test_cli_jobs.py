"""`beamish jobs` against a running server: enqueue, list, show, cancel, and its errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from anyio import to_thread

from beamish.cli import main
from beamish.store.secrets import ENV_VAR
from tests.jobs._app import Events
from tests.server.api._support import SECRET, serve_api

pytestmark = pytest.mark.anyio


async def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``beamish *args`` (in a thread: it blocks on the server this loop serves)."""
    status = await to_thread.run_sync(main, list(args))
    out, err = capsys.readouterr()
    return status, out, err


async def test_jobs_commands_work_a_users_jobs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """enqueue prints the handle; list shows it as a table; show prints the answer;
    cancel cancels a scheduled job; a server error is one line, exit 1."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    async with serve_api(tmp_path, real_server=True) as api:
        events = Events()
        api.rt.jobs.subscribe(events)
        server = ("--server", api.url, "--user", "ada")
        status, out, _ = await _cli(capsys, "jobs", "enqueue", "--prompt", "hello cli",
                                    "--format", "markdown", *server)
        assert status == 0
        job_id, output_id = re.search(r"^(\d+)\s+([0-9a-f]{32})\s+pending\s+yes", out,
                                      re.MULTILINE).groups()  # type: ignore[union-attr]
        await events.wait("completed", job_id=int(job_id))
        status, out, _ = await _cli(capsys, "jobs", "list", *server)
        assert status == 0
        assert re.search(rf"^{output_id}\s+{job_id}\s+completed\s+-\s+\S+\s+1\s", out,
                         re.MULTILINE), out
        status, out, _ = await _cli(capsys, "jobs", "show", output_id, *server)
        assert status == 0
        assert re.search(r"^status\s+completed$", out, re.MULTILINE)
        assert re.search(r"^format\s+markdown$", out, re.MULTILINE)
        assert "hello cli" in out
        later = datetime.now(UTC) + timedelta(hours=1)
        scheduled = await api.rt.jobs.enqueue(prompt="x", user_id="ada", run_at=later)
        status, out, _ = await _cli(capsys, "jobs", "cancel", str(scheduled.job_id), *server)
        assert status == 0
        assert re.search(r"^status\s+cancelled$", out, re.MULTILINE)
        status, _, err = await _cli(capsys, "jobs", "show", output_id, "--server", api.url,
                                    "--user", "bob")
        assert status == 1
        assert err.startswith(f"beamish jobs show: {api.url} answered 403: ")
        status, _, err = await _cli(capsys, "jobs", "enqueue", "--template", "nope",
                                    "--var", "n=3", *server)
        assert (status, "answered 404" in err, "'nope'" in err) == (1, True, True)


def test_each_jobs_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help of each jobs command names its options."""
    for command, option in (("enqueue", "--template"), ("list", "--status"),
                            ("show", "output_id"), ("cancel", "job_id")):
        with pytest.raises(SystemExit) as exited:
            main(["jobs", command, "--help"])
        assert exited.value.code == 0
        assert option in capsys.readouterr().out


def test_a_bad_variable_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--var without '=' is an argparse error naming it (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "enqueue", "--template", "t", "--var", "oops", "--user", "ada"])
    assert exited.value.code == 2
    assert "'oops' is not K=V" in capsys.readouterr().err


async def test_an_unreachable_server_is_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """No server at --server: one line saying so, exit 1."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    status, _, err = await _cli(capsys, "jobs", "list", "--user", "ada", "--server",
                                "http://127.0.0.1:9")
    assert status == 1
    assert err.startswith("beamish jobs list: cannot reach http://127.0.0.1:9")
