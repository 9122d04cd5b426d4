"""``LoopLocal``: one value per event loop, found fast, forgotten with its loop; ``NextTurn``:
items handed to an action at the loop's next turn, with one callback for all.

For state that belongs to an event loop rather than to any task or actor — a batch of
writes flushed once per turn, one timer shared by many waiters — read on hot paths.
``weakref.WeakKeyDictionary`` would do, but it builds a weak reference for every lookup;
this keys a plain dict by the loop's id and checks, through a weak reference kept with the
value, that the entry is that loop's and not a dead loop's whose id was reused.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class LoopLocal(Generic[_T]):
    """The value of ``factory()`` for each event loop that asks (see the module docs)."""

    __slots__ = ("_factory", "_values")

    def __init__(self, factory: Callable[[], _T]) -> None:
        self._factory = factory
        self._values: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], _T]] = {}

    def get(self, loop: asyncio.AbstractEventLoop) -> _T:
        """This loop's value, made the first time."""
        key = id(loop)
        entry = self._values.get(key)
        if entry is not None and entry[0]() is loop:
            return entry[1]
        value = self._factory()
        values = self._values

        def forget(ref: weakref.ref[asyncio.AbstractEventLoop]) -> None:
            if values.get(key, (None,))[0] is ref:  # not a newer loop's under the same id
                del values[key]

        values[key] = (weakref.ref(loop, forget), value)
        return value

    def __len__(self) -> int:
        return len(self._values)


class NextTurn(Generic[_T]):
    """Items for ``action`` at the next turn of the running event loop, in the order added:
    one loop callback per turn for all of them, not one each.

    An item added twice in a turn is handed over twice. Keep one per loop (``LoopLocal``).
    """

    __slots__ = ("_action", "_items")

    def __init__(self, action: Callable[[_T], object]) -> None:
        self._action = action
        self._items: list[_T] = []

    def add(self, item: _T) -> None:
        """Hand ``item`` to the action at the next turn (call from inside the loop)."""
        if not self._items:
            asyncio.get_running_loop().call_soon(self._run)
        self._items.append(item)

    def _run(self) -> None:
        items, self._items = self._items, []
        action = self._action
        for item in items:
            action(item)
