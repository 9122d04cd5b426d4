"""LoopLocal: one value per event loop, forgotten when the loop is gone."""

from __future__ import annotations

import asyncio
import gc

from beamish.runtime.loops import LoopLocal, NextTurn


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


def test_next_turn_hands_items_over_at_the_next_turn_in_order() -> None:
    """Nothing during the turn that adds; every item, in order (repeats too), at the next,
    with one callback; items added then wait for the turn after."""
    seen: list[str] = []
    turns = NextTurn(seen.append)

    async def main() -> None:
        turns.add("a")
        turns.add("b")
        turns.add("a")
        assert seen == []
        await asyncio.sleep(0)
        assert seen == ["a", "b", "a"]
        turns.add("c")
        await asyncio.sleep(0)
        assert seen == ["a", "b", "a", "c"]

    asyncio.run(main())
