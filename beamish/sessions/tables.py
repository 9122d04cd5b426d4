"""``OwnedTable``: values that actors publish under a key, readable without a call to them.

As an Erlang process publishes into an ETS table it owns, an actor puts a value of its state
here under a key (a session context: its cached preferences, its usage counter, under its
``SessionKey``) and anyone reads it with a dictionary lookup — no message, no waiting on the
owner's mailbox. Only the owner changes its value, and it withdraws it when it exits, however
it exits (an ``on_exit`` callback). Withdrawal goes by identity: a restarted owner publishes
a new value under the same key before the old one's exit may be reported, and the late
withdrawal of the old value leaves the new one in place.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class OwnedTable(Generic[K, V]):
    """Key → the value its live owner published (see the module docs)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def publish(self, key: K, value: V) -> None:
        """The owner of ``key`` keeps ``value`` up to date from now on."""
        self._entries[key] = value

    def withdraw(self, key: K, value: V) -> None:
        """That owner exited: forget ``value`` (not a newer owner's under the same key)."""
        if self._entries.get(key) is value:
            del self._entries[key]

    def get(self, key: K) -> V | None:
        """The value the live owner of ``key`` published, or None."""
        return self._entries.get(key)
