"""Application tests run on a virtual-time event loop: sleeps and timeouts take no real time.

``looptime`` fast-forwards the loop clock whenever the loop would otherwise block, so
``await asyncio.sleep(5)`` returns at once with ``loop.time()`` advanced by exactly 5. Tests
assert exact virtual times; none sleeps real seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import looptime
import pytest

from beamish.runtime import Node


def _virtual_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = looptime.new_event_loop(start=0.0, noop_cycles=42)
    return loop


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Every runtime test runs on asyncio with a virtual clock."""
    return ("asyncio", {"loop_factory": _virtual_loop})


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    """A running Node, shut down (every actor task awaited) after the test."""
    async with Node() as running:
        yield running
