"""The virtual clock fixture works."""

import asyncio

import pytest

pytestmark = pytest.mark.anyio


async def test_virtual_time_advances_exactly() -> None:
    """A 100 s sleep takes no real time and advances loop time by exactly 100."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(100)
    assert loop.time() - t0 == pytest.approx(100)
