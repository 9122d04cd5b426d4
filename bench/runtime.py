"""Application suite: beamish actors against plain-asyncio baselines measured in the same run.

* ``call_ratio`` — beamish ``call`` round trip / a bare ``asyncio.Queue`` + Future round trip.
* ``cast_ratio`` — beamish ``cast`` throughput / a bare ``deque`` + wake-up Future mailbox.
  Both consumers run the same per-message handler (count, and signal when all arrived), and
  the beamish producer writes ``await cast(ref, i)``, the documented backpressure idiom.
* ``idle_actor_bytes`` — traced memory per hibernated actor with empty state (100k actors).
* ``spawn_per_s`` — start + stop of supervised actors under a DynamicSupervisor.

Each timing is the median of several interleaved rounds (baseline, beamish, baseline, ...),
so that drift in the machine's speed hits both sides alike.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tracemalloc
from collections import deque
from typing import Any

from beamish.runtime import (
    Actor,
    Caller,
    Node,
    call,
    cast,
    start,
    start_child,
    start_dynamic_supervisor,
)
from beamish.runtime.dynamic import terminate_child_ref
from bench._harness import Report, now

# -- baselines in plain asyncio ---------------------------------------------------------------


async def baseline_call(n: int) -> float:
    """Seconds per request/reply over an asyncio.Queue, replies through a Future."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()

    async def server() -> None:
        while True:
            request, fut = await queue.get()
            fut.set_result(request)

    task = loop.create_task(server())
    t0 = now()
    for i in range(n):
        fut = loop.create_future()
        queue.put_nowait((i, fut))
        await fut
    elapsed = now() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed / n


class _DequeMailbox:
    """The one-way baseline: a deque plus a single wake-up future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, total: int) -> None:
        self.loop = loop
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.count = 0
        self.total = total
        self.done: asyncio.Future[None] = loop.create_future()

    def put(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result(None)

    def handle(self, item: Any) -> None:
        # The same per-message work as the beamish Counter's handle_cast.
        self.count += 1
        if self.count >= self.total:
            self.done.set_result(None)

    async def consume(self) -> None:
        items, handle = self.items, self.handle
        while not self.done.done():
            while items:
                handle(items.popleft())
            if self.done.done():
                return
            self.waiter = self.loop.create_future()
            await self.waiter


async def baseline_cast(n: int, batch: int) -> float:
    """Messages per second through the deque mailbox."""
    loop = asyncio.get_running_loop()
    mailbox = _DequeMailbox(loop, n)
    task = loop.create_task(mailbox.consume())
    t0 = now()
    for start_at in range(0, n, batch):
        for i in range(start_at, min(n, start_at + batch)):
            mailbox.put(i)
        await asyncio.sleep(0)
    await mailbox.done
    elapsed = now() - t0
    await task
    return n / elapsed


# -- beamish --------------------------------------------------------------------------------


class Echo(Actor):
    def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


class Counter(Actor):
    async def init(self, arg: tuple[int, asyncio.Future[None]]) -> None:
        self.total, self.done = arg
        self.count = 0

    def handle_cast(self, request: Any) -> None:
        self.count += 1
        if self.count >= self.total:
            self.done.set_result(None)


class AsyncCounter(Counter):
    async def handle_cast(self, request: Any) -> None:  # type: ignore[override]
        self.count += 1
        if self.count >= self.total:
            self.done.set_result(None)


class Idle(Actor):
    async def init(self, arg: Any) -> None:
        self.hibernate()


async def beamish_call(n: int) -> float:
    ref = await start(Echo)
    t0 = now()
    for i in range(n):
        await call(ref, i)
    return (now() - t0) / n


async def beamish_cast(n: int, batch: int, actor: type[Counter]) -> float:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ref = await start(actor, (n, done), mailbox_size=batch * 2)
    t0 = now()
    for start_at in range(0, n, batch):
        for i in range(start_at, min(n, start_at + batch)):
            await cast(ref, i)
        await asyncio.sleep(0)
    await done
    return n / (now() - t0)


async def idle_actor_bytes(count: int) -> tuple[float, int]:
    """Traced bytes per hibernated empty actor (and the total)."""
    node_refs = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        node_refs.append(await start(Idle))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert all(ref.status == "hibernated" for ref in node_refs)
    # The caller's list of refs is what any owner must keep; count it as part of the cost.
    total = after - before
    return total / count, total


async def spawn_rate(n: int) -> float:
    sup = await start_dynamic_supervisor()
    t0 = now()
    for _ in range(n):
        ref = await start_child(sup, Echo.child_spec(restart="temporary"))
        await terminate_child_ref(sup, ref)
    return n / (now() - t0)


async def _suite(quick: bool) -> Report:
    report = Report("runtime")
    rounds = 3 if quick else 7
    calls = 5_000 if quick else 50_000
    casts = 20_000 if quick else 200_000
    batch = 1000
    raw: dict[str, list[float]] = {k: [] for k in (
        "baseline_call_s", "beamish_call_s", "baseline_cast_per_s", "beamish_cast_per_s",
        "beamish_async_cast_per_s")}
    async with Node():
        for _ in range(rounds):
            raw["baseline_call_s"].append(await baseline_call(calls))
            raw["beamish_call_s"].append(await beamish_call(calls))
            raw["baseline_cast_per_s"].append(await baseline_cast(casts, batch))
            raw["beamish_cast_per_s"].append(await beamish_cast(casts, batch, Counter))
            raw["beamish_async_cast_per_s"].append(await beamish_cast(casts, batch, AsyncCounter))
        spawn = await spawn_rate(1_000 if quick else 10_000)
    async with Node():
        per_actor, total = await idle_actor_bytes(10_000 if quick else 100_000)
    med = {k: statistics.median(v) for k, v in raw.items()}
    report.add("call_ratio", med["beamish_call_s"] / med["baseline_call_s"], "x", "<= 1.3")
    report.add("cast_ratio", med["beamish_cast_per_s"] / med["baseline_cast_per_s"], "x", ">= 0.6")
    report.add("cast_ratio_async_handler",
               med["beamish_async_cast_per_s"] / med["baseline_cast_per_s"], "x")
    report.add("idle_actor_bytes", per_actor, "B", "<= 2048")
    report.add("spawn_per_s", spawn, "/s")
    report.add("call_us", med["beamish_call_s"] * 1e6, "us")
    report.add("baseline_call_us", med["baseline_call_s"] * 1e6, "us")
    report.add("cast_per_s", med["beamish_cast_per_s"], "/s")
    report.add("baseline_cast_per_s", med["baseline_cast_per_s"], "/s")
    report.raw = {**raw, "idle_actor_total_bytes": total, "rounds": rounds, "calls": calls,
                  "casts": casts}
    return report


def run(quick: bool) -> Report:
    """Run the suite in a fresh event loop."""
    return asyncio.run(_suite(quick))
