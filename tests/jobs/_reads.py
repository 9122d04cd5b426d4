"""A store's output reads, counted: to know a waiter has read its output (state, not
time)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.jobs._app import WAIT_S


class Reads:
    """Counts the calls of a store's ``get_output`` (patched for the test), and waits until
    there have been so many (state, not time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        read = store.get_output

        async def counted(output_id: str) -> Any:
            try:
                return await read(output_id)
            finally:
                self.count += 1
                self._changed.set()

        monkeypatch.setattr(store, "get_output", counted)

    async def reached(self, count: int) -> None:
        """Until ``count`` reads have returned."""
        async with asyncio.timeout(WAIT_S):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()
