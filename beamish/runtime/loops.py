"""``LoopLocal``: one value per event loop, found fast, forgotten with its loop.

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
