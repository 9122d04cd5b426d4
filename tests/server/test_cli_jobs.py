"""`beamish jobs` against a running server: enqueue, list, show, cancel, and its errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from anyio import to_thread

from beamish.cli import main
from beamish.store import NewTemplateVersion
from beamish.store.job_models import Rating
from beamish.store.models import GlobalConfig
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


_OUTPUT_ROW = re.compile(r"^([0-9a-f]{32})\s", re.MULTILINE)
_NEXT = re.compile(r"^more: the next page is --cursor (\S+) \(with the same filters\)$",
                   re.MULTILINE)


async def _listed(capsys: pytest.CaptureFixture[str], *args: str,
                  ) -> tuple[list[str], str | None]:
    """The output ids ``beamish jobs list *args`` prints, in order, and the cursor it prints
    for the next page (None when it prints none)."""
    status, out, err = await _cli(capsys, "jobs", "list", *args)
    assert (status, err) == (0, ""), err
    cursor = _NEXT.search(out)
    return _OUTPUT_ROW.findall(out), None if cursor is None else cursor.group(1)


async def test_jobs_list_filters_and_pages_with_the_cursor_it_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """list --model, --template, --feedback and --status each keep only what matches, and
    combine; with more than --limit, list prints a --cursor that fetches the next page of the
    same filters, and the last page prints none."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    async with serve_api(tmp_path, real_server=True) as api:
        jobs = api.rt.jobs
        events = Events()
        jobs.subscribe(events)
        await api.rt.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Summarise {{ topic }}"))
        other = {"model": "echo-2"}
        handles = {
            "plain": await jobs.enqueue(user_id="ada", prompt="plain"),
            "plain2": await jobs.enqueue(user_id="ada", prompt="other model", overrides=other),
            "digest": await jobs.enqueue(user_id="ada", template="digest",
                                         variables={"topic": "tides"}),
            "digest2": await jobs.enqueue(user_id="ada", template="digest",
                                          variables={"topic": "moons"}, overrides=other),
        }
        for handle in handles.values():
            await events.wait("completed", job_id=handle.job_id)
        ids = {name: handle.output_id for name, handle in handles.items()}
        ratings: tuple[tuple[str, Rating], ...] = (
            ("plain", "up"), ("digest2", "up"), ("plain2", "down"))
        for name, rating in ratings:
            await jobs.set_feedback(ids[name], user_id="ada", rating=rating)
        await jobs.enqueue(user_id="ada", prompt="later",
                           run_at=datetime.now(UTC) + timedelta(hours=1))
        server = ("--server", api.url, "--user", "ada")

        def named(*names: str) -> set[str]:
            return {ids[name] for name in names}

        everything, more = await _listed(capsys, *server)
        assert (len(everything), more) == (5, None)
        for args, expected in (
                (("--model", "echo-2"), named("plain2", "digest2")),
                (("--template", "digest"), named("digest", "digest2")),
                (("--template", "digest", "--model", "echo-2"), named("digest2")),
                (("--feedback", "up"), named("plain", "digest2")),
                (("--feedback", "down"), named("plain2")),
                (("--feedback", "up", "--template", "digest"), named("digest2")),
                (("--status", "completed"), set(ids.values())),
                (("--status", "pending"), set(everything) - set(ids.values())),
                (("--model", "nope"), set())):
            listed, more = await _listed(capsys, *server, *args)
            assert (set(listed), more) == (expected, None), args
        pages: list[str] = []
        cursor: tuple[str, ...] = ()
        while True:
            page, more = await _listed(capsys, *server, "--status", "completed",
                                       "--limit", "3", *cursor)
            pages += page
            if more is None:
                break
            cursor = ("--cursor", more)
        completed = [i for i in everything if i in ids.values()]
        assert (pages, len(cursor)) == (completed, 2)
        first, more = await _listed(capsys, *server, "--model", "echo-2", "--limit", "1")
        assert more is not None
        second, last = await _listed(capsys, *server, "--model", "echo-2", "--limit", "1",
                                     "--cursor", more)
        assert (set(first + second), len(first + second), last) == (
            named("plain2", "digest2"), 2, None)
        status, _, err = await _cli(capsys, "jobs", "list", *server, "--cursor", "garbage")
        assert (status, "answered 4" in err, "cursor" in err) == (1, True, True), err


async def test_enqueue_by_task_type_and_wait_shows_the_finished_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """enqueue with neither --prompt nor --template renders the template the task type's
    config names; --wait prints the output once it has ended; show --wait does too; a
    --wait out of bounds is a usage error."""
    monkeypatch.setenv(ENV_VAR, SECRET)
    async with serve_api(tmp_path, real_server=True) as api:
        await api.rt.templates.create_version(NewTemplateVersion(
            name="digest", prompt="Digest of {{ topic }}", task_type="summarize"))
        await api.rt.store.set_global_config(GlobalConfig(
            task_type="summarize", provider="echo", model="echo-1", template="digest"))
        server = ("--server", api.url, "--user", "ada")
        status, out, err = await _cli(capsys, "jobs", "enqueue", "--task", "summarize",
                                      "--var", "topic=tides", "--wait", "30", *server)
        assert (status, err) == (0, "")
        assert re.search(r"^status\s+completed$", out, re.MULTILINE), out
        assert re.search(r"^template\s+digest v1$", out, re.MULTILINE), out
        assert "Digest of tides" in out
        output_id = re.search(r"^output\s+([0-9a-f]{32})$", out,
                              re.MULTILINE).group(1)  # type: ignore[union-attr]
        status, out, _ = await _cli(capsys, "jobs", "show", output_id, "--wait", "5", *server)
        assert status == 0
        assert re.search(r"^status\s+completed$", out, re.MULTILINE), out
        status, _, err = await _cli(capsys, "jobs", "enqueue", "--task", "chat", *server)
        assert (status, "answered 422" in err, "no template and no prompt" in err) == (
            1, True, True), err
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "show", output_id, "--wait", "61", "--user", "ada"])
    assert exited.value.code == 2
    assert "--wait is 0 to 60 seconds" in capsys.readouterr().err


def test_each_jobs_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--help of each jobs command names its options."""
    for command, option in (("enqueue", "--template"), ("list", "--status"),
                            ("list", "--model"), ("list", "--feedback"), ("list", "--cursor"),
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
