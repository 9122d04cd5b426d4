"""Fixtures of the transport and channel-actor tests: a real server on a real event loop.

These tests use real sockets, so they run on asyncio's own clock: timeouts they configure are
short (a fraction of a second) and they wait on frames and recorded events, never on sleeps.
The sans-I/O tests in this folder need no loop and ignore these fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels._phx import ChannelServer, serve_channels


@pytest.fixture
async def server() -> AsyncIterator[ChannelServer]:
    """A channels server with the default options."""
    async with serve_channels() as running:
        yield running
