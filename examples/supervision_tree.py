"""A supervision tree at work: workers crash, supervisors restart them, nothing else notices.

Run it with ``python -m examples.supervision_tree [--seconds N]`` (Ctrl-C or SIGTERM stops it
in order). The tree::

    root (one_for_one)
    ├── registry          Registry, unique keys: workers are found by name
    ├── workers           DynamicSupervisor: one Counter per key, started on demand
    └── chaos             every second, crashes a random worker and reports the tree

Each Counter keeps a count in memory. A crash loses that worker's count (a restart begins from
``init``) and nothing else: the other workers keep theirs, as the one_for_one strategy says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from typing import Any

from beamish.runtime import (
    Actor,
    ActorExitedError,
    Caller,
    Node,
    NoProcessError,
    Registry,
    TreeNode,
    call,
    cast,
    dynamic_supervisor_spec,
    send_interval,
    start_child,
    via,
)

WORKERS = ("alpha", "beta", "gamma", "delta")


class Counter(Actor):
    """Counts the casts it receives; crashes when told to."""

    def init(self, key: str) -> None:
        self.key = key
        self.count = 0

    def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError(f"{self.key} was told to crash")
        self.count += 1

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.count


class Chaos(Actor):
    """Ticks once a second: bumps every worker, crashes one, prints the tree."""

    def init(self, arg: None) -> None:
        self.rng = random.Random(7)
        send_interval(self.ref, "tick", 1.0)
        self.ticks = 0

    async def handle_info(self, message: Any) -> None:
        self.ticks += 1
        for key in WORKERS:
            await cast(via("registry", key), "bump")
        victim = self.rng.choice(WORKERS)
        await cast(via("registry", victim), "crash")
        counts = {key: await self.count_of(key) for key in WORKERS}
        print(f"tick {self.ticks}: crashed {victim:<6} counts={counts}")

    async def count_of(self, key: str) -> int | str:
        try:
            count: int = await call(via("registry", key), "get")
        except (NoProcessError, ActorExitedError):
            return "restarting"  # the crash is being handled by its supervisor right now
        return count


def render(tree: TreeNode, depth: int = 0) -> str:
    """The tree as indented text."""
    line = f"{'  ' * depth}{tree.id} [{tree.type}, {tree.status}, restarts={tree.restart_count}]"
    return "\n".join([line, *(render(child, depth + 1) for child in tree.children)])


async def main(seconds: float | None) -> None:
    children = [
        Registry.child_spec("unique", id="registry", name="registry"),
        dynamic_supervisor_spec(id="workers", name="workers", max_restarts=100, max_seconds=1),
        Chaos.child_spec(id="chaos"),
    ]
    async with Node(children, handle_signals=True) as node:
        for key in WORKERS:
            await start_child(
                "workers", Counter.child_spec(key, id=key, name=via("registry", key))
            )
        tree = node.tree()
        assert tree is not None
        print(render(tree))
        if seconds is None:
            await node.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await node.wait()
        tree = node.tree()
        assert tree is not None
        print(render(tree))
    print("node stopped: every actor shut down in order")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    args = parser.parse_args()
    asyncio.run(main(args.seconds))
