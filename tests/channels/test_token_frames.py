"""_TokenFrames: an answer's token pushes, at the end of their turn or with the terminal frame."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.channels.conversation import _TokenFrames

pytestmark = pytest.mark.anyio


class _Channel:
    """Records pushes; each returns ``sent``, the future a full socket mailbox leaves pending."""

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.set_result(None)

    def push(self, event: str, payload: dict[str, Any]) -> asyncio.Future[None]:
        assert (event, payload["request_id"]) == ("token", "r1")
        self.pushed.append(payload["delta"])
        return self.sent


async def test_tokens_go_out_at_the_end_of_the_turn_they_arrived_in() -> None:
    """Held while the turn runs, pushed in order once it ends; the next turn's are next."""
    channel = _Channel()
    tokens = _TokenFrames(channel.push, "r1")
    await tokens.add("a ")
    await tokens.add("b ")
    assert channel.pushed == []
    await asyncio.sleep(0)
    assert channel.pushed == ["a ", "b "]
    await tokens.add("c")
    await asyncio.sleep(0)
    assert channel.pushed == ["a ", "b ", "c"]


async def test_tokens_of_the_turn_the_answer_ended_in_wait_for_the_flush() -> None:
    """Once the answer ended, its last tokens stay until flush() (before the terminal frame),
    and are pushed once."""
    channel = _Channel()
    tokens = _TokenFrames(channel.push, "r1")
    await tokens.add("last")
    tokens.end()
    await asyncio.sleep(0)
    assert channel.pushed == []
    tokens.flush()
    await asyncio.sleep(0)
    assert channel.pushed == ["last"]


async def test_a_flush_before_the_turn_ends_pushes_once() -> None:
    """A cancelled answer flushes at once; the end of the turn then finds nothing held."""
    channel = _Channel()
    tokens = _TokenFrames(channel.push, "r1")
    await tokens.add("partial")
    tokens.flush()
    await asyncio.sleep(0)
    assert channel.pushed == ["partial"]


async def test_the_next_token_waits_while_the_socket_mailbox_is_full() -> None:
    """A pending push future (a full mailbox) makes the next add wait until it completes."""
    channel = _Channel()
    channel.sent = asyncio.get_running_loop().create_future()
    tokens = _TokenFrames(channel.push, "r1")
    await tokens.add("a")
    await asyncio.sleep(0)
    assert channel.pushed == ["a"]
    adding = asyncio.ensure_future(tokens.add("b"))
    await wait_all_tasks_blocked()
    assert not adding.done()
    channel.sent.set_result(None)
    await adding
    await asyncio.sleep(0)
    assert channel.pushed == ["a", "b"]
