"""Limits: the token bucket and per-user limiter (exact, on an injected clock), the bounded
outbound queue and outbox, and ``rate_limited`` replies through a real server."""

from __future__ import annotations

from typing import Any

import pytest

from beamish.channels.errors import InvalidOptionError
from beamish.channels.limits import (
    OutboundQueue,
    RateLimit,
    RateLimiter,
    TokenBucket,
    rate_limited_response,
)
from beamish.channels.socket_actor import CloseFrame, Outbox, SocketOptions
from tests.channels._phx import ChannelServer, PhxClient, ok, serve_channels

# --- the token bucket ---------------------------------------------------------------------


def test_a_bucket_starts_full_and_empties_by_one_per_take() -> None:
    """burst=3: three takes at the same instant succeed, the fourth does not."""
    bucket = TokenBucket(RateLimit(per_second=2, burst=3), now=10.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_refills_at_its_rate() -> None:
    """At 2 tokens/s an emptied bucket holds half a token at 0.25 s and a whole one at 0.5 s."""
    bucket = TokenBucket(RateLimit(per_second=2, burst=1), now=0.0)
    assert bucket.take(0.0)
    assert bucket.retry_after(0.25) == 0.25
    assert not bucket.take(0.25)
    assert bucket.take(0.5)
    assert bucket.retry_after(0.5) == 0.5


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    """An hour idle refills to burst, not beyond."""
    bucket = TokenBucket(RateLimit(per_second=10, burst=2), now=0.0)
    assert [bucket.take(3600.0) for _ in range(3)] == [True, True, False]


def test_an_earlier_clock_reading_takes_nothing_back() -> None:
    """A clock value older than the last one neither refills nor drains the bucket."""
    bucket = TokenBucket(RateLimit(per_second=1, burst=1), now=5.0)
    assert bucket.take(5.0)
    assert not bucket.take(4.0)
    assert bucket.retry_after(4.0) == 1.0


@pytest.mark.parametrize(
    ("per_second", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0), (1, 1.5), (True, 1)]
)
def test_a_rate_limit_rejects_nonsense(per_second: float, burst: int) -> None:
    """Rates must be finite and positive, bursts whole and at least 1."""
    with pytest.raises(InvalidOptionError):
        RateLimit(per_second=per_second, burst=burst)


# --- the per-user limiter -----------------------------------------------------------------


def test_each_key_has_its_own_bucket() -> None:
    """One user's empty bucket does not limit another user."""
    limiter = RateLimiter(RateLimit(per_second=1, burst=1))
    assert limiter.allow("ada", 0.0)
    assert not limiter.allow("ada", 0.0)
    assert limiter.allow("bob", 0.0)
    assert limiter.retry_after("ada", 0.0) == 1.0
    assert limiter.retry_after("nobody", 0.0) == 0.0


def test_prune_forgets_only_full_buckets() -> None:
    """A refilled bucket is dropped (a fresh one is the same); a draining one is kept."""
    limiter = RateLimiter(RateLimit(per_second=1, burst=2))
    limiter.allow("idle", 0.0)
    limiter.allow("busy", 9.5)
    assert limiter.prune(10.0) == 1
    assert len(limiter) == 1
    assert limiter.retry_after("busy", 10.0) == 0.0


def test_the_table_prunes_itself_as_it_grows() -> None:
    """Past 1024 keys, adding one more first drops every bucket that has refilled."""
    limiter = RateLimiter(RateLimit(per_second=1, burst=1))
    for n in range(1024):
        limiter.allow(n, 0.0)
    limiter.allow("late", 5.0)
    assert len(limiter) == 1


def test_the_rate_limited_response_rounds_up_to_milliseconds() -> None:
    """A wait of 0.0101 s is reported as 11 ms: never less than the real wait."""
    assert rate_limited_response(0.0101) == {"reason": "rate_limited", "retry_after_ms": 11}


# --- the outbound queue -------------------------------------------------------------------


def test_the_queue_is_bounded_in_frames() -> None:
    """max_frames=2: the third frame is refused and nothing is queued for it."""
    queue = OutboundQueue(max_frames=2, max_bytes=1000)
    assert [queue.put("a"), queue.put("b"), queue.put("c")] == [True, True, False]
    assert (len(queue), queue.size) == (2, 2)


def test_the_queue_is_bounded_in_bytes_but_takes_one_big_frame() -> None:
    """A frame that would pass max_bytes is refused, unless the queue is empty."""
    queue = OutboundQueue(max_frames=10, max_bytes=4)
    assert queue.put(b"123456")
    assert not queue.put("x")
    assert queue.pop() == b"123456"
    assert queue.put("abc")
    assert not queue.put("de")
    assert queue.describe() == "1 frames / 3 bytes"


def test_the_queue_pops_in_order_and_clears() -> None:
    """Frames leave oldest first; clear drops the rest and says how many."""
    queue = OutboundQueue()
    for frame in ("1", "2", "3"):
        queue.put(frame)
    assert queue.pop() == "1"
    assert queue.clear() == 2
    assert queue.pop() is None
    assert queue.size == 0


@pytest.mark.parametrize("field", ["idle_timeout", "max_channels", "outbound_frames",
                                   "outbound_bytes"])
def test_socket_options_are_checked_where_they_are_made(field: str) -> None:
    """A zero limit is refused when the options are built, not when a client connects."""
    zero: dict[str, Any] = {field: 0}
    with pytest.raises(InvalidOptionError):
        SocketOptions(**zero)


# --- the outbox (the writer's side) -------------------------------------------------------


def test_the_outbox_sends_frames_then_the_close() -> None:
    """The writer gets every frame in order, then the close, then None."""
    outbox = Outbox(OutboundQueue())
    assert outbox.put("a")
    assert outbox.put(b"b")
    outbox.close(1001, "bye")
    assert outbox.put("dropped after the close")
    got = [outbox.take() for _ in range(4)]
    assert got == ["a", b"b", CloseFrame(1001, "bye"), None]


def test_a_discarding_close_skips_the_queue() -> None:
    """close(discard=True) — a slow consumer — drops what waits; only the close goes out."""
    outbox = Outbox(OutboundQueue())
    outbox.put("stale")
    outbox.close(1008, "slow consumer", discard=True)
    outbox.close(1001, "ignored: the first close wins")
    assert outbox.take() == CloseFrame(1008, "slow consumer")


def test_the_writer_is_blocked_only_between_taking_a_frame_and_coming_back() -> None:
    """writer_blocked is True while a taken frame is being sent, False once take() runs."""
    outbox = Outbox(OutboundQueue())
    outbox.put("a")
    assert not outbox.writer_blocked
    assert outbox.take() == "a"
    assert outbox.writer_blocked
    outbox.abort()
    assert outbox.take() is None
    assert not outbox.writer_blocked


def test_a_writer_is_woken_only_when_work_arrives_and_none_runs() -> None:
    """wake runs once per idle-to-busy change: a writer drains until take() says None."""
    outbox = Outbox(OutboundQueue())
    wakes: list[int] = []
    outbox.put("before attach")
    outbox.attach(lambda: wakes.append(1))
    assert len(wakes) == 1  # something was waiting already
    outbox.put("more, same writer")
    assert len(wakes) == 1
    assert [outbox.take(), outbox.take(), outbox.take()] == [
        "before attach", "more, same writer", None]
    outbox.put("after the writer stopped")
    assert len(wakes) == 2
    assert outbox.take() == "after the writer stopped"
    outbox.close(1000, "bye")  # the writer is still running: no new one
    assert (len(wakes), outbox.take(), outbox.take()) == (2, CloseFrame(1000, "bye"), None)


def test_an_outbox_sends_at_once_only_while_no_writer_runs() -> None:
    """Attached with send_now, a put with no writer running sends the frame itself; a refused
    one is queued for a writer, and the frames after it queue behind it, in order."""
    outbox = Outbox(OutboundQueue())
    wakes: list[int] = []
    sent: list[str | bytes] = []
    room = 1

    def send_now(frame: str | bytes) -> bool:
        nonlocal room
        if not room:
            return False
        room -= 1
        sent.append(frame)
        return True

    outbox.attach(lambda: wakes.append(1), send_now)
    assert outbox.put("a")
    assert (sent, wakes, outbox.take()) == (["a"], [], None)  # nothing was queued
    assert outbox.put("b")  # refused: queued, and a writer woken for it
    room = 5
    assert outbox.put("c")  # a writer runs: it goes behind b
    assert (sent, wakes) == (["a"], [1])
    assert [outbox.take(), outbox.take(), outbox.take()] == ["b", "c", None]
    assert outbox.put("d")  # the writer stopped: at once again
    assert (sent, wakes) == (["a", "d"], [1])


def test_an_aborted_outbox_wakes_no_writer() -> None:
    """After abort (the connection is gone), puts and closes start nothing."""
    outbox = Outbox(OutboundQueue())
    wakes: list[int] = []
    outbox.attach(lambda: wakes.append(1))
    outbox.abort()
    outbox.put("late")
    outbox.close(1001, "late")
    assert wakes == []
    assert outbox.take() is None


# --- rate_limited through the server ------------------------------------------------------


@pytest.mark.anyio
async def test_messages_over_the_users_rate_get_rate_limited() -> None:
    """burst=2 per user, shared by the user's sockets: the third message is refused."""
    async with serve_channels(message_rate=RateLimit(per_second=0.001, burst=2)) as srv:
        await _check_rate_limit(srv)


async def _check_rate_limit(srv: ChannelServer) -> None:
    async with srv.connect("ada") as ws1, srv.connect("ada") as ws2, srv.connect("bob") as ws3:
        one, two, other = PhxClient(ws1), PhxClient(ws2), PhxClient(ws3)
        jr1, _ = await one.join("room:1")
        jr2, _ = await two.join("room:2")
        jr3, _ = await other.join("room:3")
        assert (await one.call("room:1", "echo", {"n": 1}, jr1))[4] == ok({"n": 1})
        assert (await two.call("room:2", "echo", {"n": 2}, jr2))[4] == ok({"n": 2})
        ref = await one.push("room:1", "echo", {"n": 3}, jr1)
        refused = await one.recv()
        assert isinstance(refused, list)
        assert refused[:4] == [jr1, ref, "room:1", "phx_reply"]
        assert refused[4]["status"] == "error"
        response = refused[4]["response"]
        assert response["reason"] == "rate_limited"
        assert 0 < response["retry_after_ms"] <= 1_000_000
        # Heartbeats and joins are not messages; other users have their own budget.
        assert (await one.heartbeat())[4] == ok({})
        assert (await other.call("room:3", "echo", {"n": 4}, jr3))[4] == ok({"n": 4})
