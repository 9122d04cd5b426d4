"""``Inbox``: an actor that keeps the plain messages it is sent (a stand-in for a joined
channel, a monitor, any receiver a test needs to read back)."""

from __future__ import annotations

from typing import Any

from beamish.runtime import Actor, Caller


class Inbox(Actor):
    """Keeps the plain messages it gets, in order; any call answers them."""

    def init(self, arg: None) -> None:
        self.seen: list[Any] = []

    def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.seen

    def handle_info(self, message: Any) -> None:
        self.seen.append(message)
