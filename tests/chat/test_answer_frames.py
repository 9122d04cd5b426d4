"""_AnswerFrames: an answer's reply and tokens, at the end of their turn or with its end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from anyio import wait_all_tasks_blocked

from beamish.channels.channel import ReplyRef
from beamish.chat.conversation import _AnswerFrames

pytestmark = pytest.mark.anyio

REPLY = ReplyRef("conversation:c1", "1", "7")


class _Channel:
    """Records replies and pushes; each returns ``sent``, which a full mailbox leaves pending."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.arrived = asyncio.Event()  # set by every frame
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.set_result(None)

    def reply(self, to: ReplyRef, response: dict[str, Any]) -> asyncio.Future[None]:
        assert (to, response) == (REPLY, {"request_id": "r1"})
        self.frames.append("ok")
        self.arrived.set()
        return self.sent

    def push(self, event: str, payload: dict[str, Any]) -> asyncio.Future[None]:
        assert (event, payload["request_id"]) == ("token", "r1")
        self.frames.append(payload["delta"])
        self.arrived.set()
        return self.sent


def _frames(channel: _Channel) -> _AnswerFrames:
    return _AnswerFrames(channel, REPLY, "r1", asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_the_reply_goes_at_the_end_of_the_first_turn_without_tokens() -> None:
    """An answer still waiting for its provider has its reply sent when its turn ends."""
    channel = _Channel()
    _frames(channel)
    assert channel.frames == []
    await asyncio.sleep(0)
    assert channel.frames == ["ok"]


async def test_reply_and_tokens_go_at_the_end_of_the_turn_they_were_made_in() -> None:
    """Held while the turn runs, sent in order once it ends; the next turn's are next."""
    channel = _Channel()
    frames = _frames(channel)
    await frames.add("a ")
    await frames.add("b ")
    assert channel.frames == []
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "a ", "b "]
    await frames.add("c")
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "a ", "b ", "c"]


async def test_frames_of_the_turn_the_answer_ended_in_wait_for_the_flush() -> None:
    """Once the answer ended, its reply and last tokens stay until flush() (before the
    terminal frame), and are sent once."""
    channel = _Channel()
    frames = _frames(channel)
    await frames.add("last")
    frames.end()
    await asyncio.sleep(0)
    assert channel.frames == []
    frames.flush()
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "last"]


async def test_held_frames_wait_hold_s_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the terminal frame is slow to come (a slow database), the held frames go anyway."""
    monkeypatch.setattr(_AnswerFrames, "HOLD_S", 0.01)
    channel = _Channel()
    frames = _frames(channel)
    await frames.add("last")
    frames.end()
    await asyncio.sleep(0)  # the end of the turn: held, not sent
    assert channel.frames == []
    await channel.arrived.wait()  # the hold limit sends them, with no terminal frame
    assert channel.frames == ["ok", "last"]
    frames.flush()  # the terminal frame's: nothing more
    assert channel.frames == ["ok", "last"]


async def test_a_flush_before_the_turn_ends_sends_once() -> None:
    """A cancelled answer flushes at once; the end of the turn then finds nothing held."""
    channel = _Channel()
    frames = _frames(channel)
    await frames.add("partial")
    frames.flush()
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "partial"]


async def test_the_next_token_waits_while_the_socket_mailbox_is_full() -> None:
    """A pending push future (a full mailbox) makes the next add wait until it completes."""
    channel = _Channel()
    channel.sent = asyncio.get_running_loop().create_future()
    frames = _frames(channel)
    await frames.add("a")
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "a"]
    adding = asyncio.ensure_future(frames.add("b"))
    await wait_all_tasks_blocked()
    assert not adding.done()
    channel.sent.set_result(None)
    await adding
    await asyncio.sleep(0)
    assert channel.frames == ["ok", "a", "b"]
