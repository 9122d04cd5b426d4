"""An Inbox makes ordinary code (a test, a request handler) a process for a while.

Inside ``async with open_inbox() as inbox:`` the current task can link to and monitor
actors, receive their DOWN and EXIT messages, be the target of ``send`` and timers, and call
``inbox.receive()``. An inbox always traps exits: the task it lends itself to is not the
runtime's to kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from beamish.runtime.errors import CallError, NoProcessError
from beamish.runtime.exits import NORMAL, Exit
from beamish.runtime.process import (
    CALL,
    DEAD,
    RUNNING,
    SIGNAL,
    STOP,
    ActorRef,
    Item,
    Msg,
    current_node,
    current_process,
)


class Inbox:
    """A mailbox for code that is not an actor. Create it with :func:`open_inbox`."""

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    def _translate(self, item: Item) -> Any:
        if item.__class__ is not Msg:
            return item  # a cast
        tag, payload, extra = item.tag, item.payload, item.extra
        if tag == SIGNAL:
            return Exit(payload, extra)
        if tag == CALL:
            return (payload, extra)
        if tag == STOP:
            return ("stop", payload)
        return payload

    async def receive(
        self, match: Callable[[Any], bool] | None = None, timeout: float | None = None
    ) -> Any:
        """The oldest message (that ``match`` accepts); wait up to ``timeout`` seconds.

        Raises TimeoutError when nothing arrives in time, and NoProcessError once the inbox
        itself is dead (killed with ``KILL``, which no process can trap).
        """
        async with asyncio.timeout(timeout):
            while True:
                found = self._take(match)
                if found is not _NOTHING:
                    return found
                if self.ref._status == DEAD:
                    raise NoProcessError(self.ref, f"the inbox exited: {self.ref._exit_reason}")
                waiter: asyncio.Future[None] = self.ref._loop.create_future()
                self.ref._waiter = waiter
                try:
                    await waiter
                finally:
                    self.ref._waiter = None

    def receive_nowait(self, match: Callable[[Any], bool] | None = None) -> Any:
        """The oldest (matching) message; raise LookupError if there is none."""
        found = self._take(match)
        if found is _NOTHING:
            raise LookupError("no matching message in the inbox")
        return found

    def _take(self, match: Callable[[Any], bool] | None) -> Any:
        mb = self.ref._mailbox
        if not mb:
            return _NOTHING
        for index, item in enumerate(mb):
            message = self._translate(item)
            if match is None or match(message):
                del mb[index]
                return message
        return _NOTHING

    @property
    def pending(self) -> int:
        """Messages waiting."""
        return self.ref.mailbox_depth


_NOTHING = object()


class open_inbox:
    """``async with open_inbox() as inbox``: lend the current task a process identity."""

    def __init__(self) -> None:
        self._inbox: Inbox | None = None
        self._token: Any = None

    async def __aenter__(self) -> Inbox:
        if current_process.get() is not None:
            raise CallError("this task is already a process; an inbox cannot nest")
        node = current_node()
        proc = ActorRef(node, None, capacity=1 << 30, overflow_block=False, hibernate_after=None)
        proc._status = RUNNING
        proc._trap_exit = True
        node._adopt(proc)
        self._token = current_process.set(proc)
        self._inbox = Inbox(proc)
        return self._inbox

    async def __aexit__(self, *exc: object) -> None:
        current_process.reset(self._token)
        assert self._inbox is not None
        self._inbox.ref._finalize(NORMAL)


__all__ = ["Inbox", "open_inbox"]
