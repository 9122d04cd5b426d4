"""LoopLocal: one value per event loop, forgotten when the loop is gone."""

from __future__ import annotations

import asyncio
import gc

from beamish.runtime.loops import LoopLocal


def test_each_loop_has_its_own_value_and_it_goes_with_the_loop() -> None:
    """The same loop gets the same value; another loop a new one; a collected loop's entry
    is dropped (the table never keeps a loop alive)."""
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    local: LoopLocal[object] = LoopLocal(make)
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert local.get(first) is local.get(first)
        assert local.get(second) is not local.get(first)
        assert len(made) == 2
    finally:
        first.close()
        second.close()
    del first, second
    gc.collect()
    assert len(local) == 0
