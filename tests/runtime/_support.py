"""Actors and helpers the runtime tests share."""

from __future__ import annotations

import asyncio
from typing import Any

from beamish.runtime import (
    Actor,
    ActorRef,
    Caller,
    ChildSpec,
    Down,
    ExitReason,
    Inbox,
    MonitorRef,
    cast,
    child_spec,
    monitor,
)

Log = list[tuple[str, str]]


def now() -> float:
    """The (virtual) loop time."""
    return asyncio.get_running_loop().time()


class Worker(Actor):
    """Traps exits, logs its start and stop; a cast "crash" crashes it, any other stops it."""

    def init(self, arg: tuple[str, Log]) -> None:
        self.name, self.log = arg
        self.trap_exit()
        self.log.append(("start", self.name))

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.name

    def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError(f"{self.name} crashed")
        self.stop(request)

    def handle_info(self, message: Any) -> None:
        pass

    def terminate(self, reason: ExitReason) -> None:
        self.log.append(("stop", self.name))


class Refuses(Actor):
    """init always fails."""

    def init(self, arg: Any) -> None:
        raise ValueError("refused")


def worker(name: str, log: Log, **options: Any) -> ChildSpec:
    """A child spec for a :class:`Worker` whose id is its name."""
    return child_spec(Worker, (name, log), id=name, **options)


async def down_of(inbox: Inbox, mref: MonitorRef) -> Down:
    """Wait for the DOWN of monitor ``mref``."""
    down: Down = await inbox.receive(lambda m: isinstance(m, Down) and m.ref is mref)
    return down


async def wait_down(inbox: Inbox, ref: ActorRef) -> ExitReason:
    """Monitor ``ref`` and wait until it is dead; return its exit reason."""
    return (await down_of(inbox, monitor(ref))).reason


async def exit_child(inbox: Inbox, ref: ActorRef | None, how: Any = "crash") -> ExitReason:
    """Make ``ref`` crash (or stop with reason ``how``) by a cast and wait until it is dead."""
    assert ref is not None
    mref = monitor(ref)
    await cast(ref, how)
    return (await down_of(inbox, mref)).reason
