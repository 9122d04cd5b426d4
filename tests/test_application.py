"""The Application's supervision tree: the node's own root, extra children first to stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from beamish.application import Application
from beamish.runtime import ROOT, Actor, ExitReason, child_spec
from beamish.sessions.services import USAGE_RECORDER
from beamish.sessions.settings import SessionSettings
from beamish.settings import Settings

pytestmark = pytest.mark.anyio

APP_CHILDREN = ["usage_recorder", "config_cache", "sessions", "sessions_by_user",
                "sessions_by_id", "session_sup", "janitor", "jobs"]


def _settings(path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{path / 'beamish.db'}",
                    sessions=SessionSettings(sweep_interval_s=3600.0))


class Witness(Actor):
    """Traps exits; when stopped, notes whether the usage recorder was still running."""

    def init(self, arg: tuple[Application, list[str]]) -> None:
        self.runtime, self.log = arg
        self.trap_exit()

    def terminate(self, reason: ExitReason) -> Any:
        recorder = self.runtime.node.whereis(USAGE_RECORDER)
        self.log.append("recorder up" if recorder is not None else "recorder gone")


async def test_the_runtime_tree_is_the_nodes_root(tmp_path: Path) -> None:
    """node.tree() is the application's tree, rooted at ROOT, extra children last."""
    log: list[str] = []
    runtime = Application(_settings(tmp_path))
    runtime.add_child(child_spec(Witness, (runtime, log), id="witness"))
    async with runtime as rt:
        tree = rt.node.tree()
        assert tree is not None
        assert rt.node.root is rt.node.whereis(ROOT)
        assert (tree.id, tree.type) == (ROOT, "Supervisor")
        assert [child.id for child in tree.children] == [*APP_CHILDREN, "witness"]


async def test_extra_children_stop_while_the_usage_recorder_still_runs(tmp_path: Path) -> None:
    """Children given to the Application stop before the application's own, the recorder last."""
    log: list[str] = []
    runtime = Application(_settings(tmp_path))
    runtime.add_child(child_spec(Witness, (runtime, log), id="witness"))
    async with runtime:
        pass
    assert log == ["recorder up"]


async def test_children_cannot_be_added_to_a_running_runtime(tmp_path: Path) -> None:
    """add_child after the Application started raises, as before the tree moved into the node."""
    async with Application(_settings(tmp_path)) as rt:
        with pytest.raises(RuntimeError, match="before entering the Application"):
            rt.add_child(child_spec(Witness, (rt, []), id="late"))
