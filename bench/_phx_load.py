"""The load generator of ``python -m bench channels``: Phoenix V2 clients in their own process.

The clients run in a child process (:class:`LoadProcess`) so that their CPU is not the
server's: the server under test keeps the benchmark's own process and event loop, the
clients get another core. The parent sends one job at a time over a pipe and gets its figures
back; the same code drives beamish and the raw ``websockets`` baseline.

A round trip is one ``message`` sent on a joined channel until its ``done`` push: the ok
reply carries the ``request_id`` that the ``token`` and ``done`` pushes name.

Jobs:

* ``closed`` — ``clients`` connections, each sending its next message as soon as the last is
  done, for ``seconds``: the maximum throughput and the latencies under it.
* ``open`` — the same connections sending at a fixed total ``rate`` (open loop: each message
  leaves at its scheduled time whether or not earlier ones are done, and its latency counts
  from that time, so a stalled server cannot hide its queueing).
* ``hold`` — connect and join ``clients`` sockets, answer ``held``, keep them open until the
  parent sends ``release``.
* ``streams`` — as ``closed``, for answers streamed at a pace (``python -m bench gateway``):
  each conversation joins session ``s<i>`` (resumed by the next job, so repeated jobs do not
  pile up sessions), and the gaps between an answer's ``token`` pushes, less ``interval``
  (the upstream's pace), are the added inter-token delays. Errors are counted, not raised.
  Returns the round trips, errors and the added delays' percentiles (ms) in the window, and
  the request id of every answer ``done`` (warm-up included). With ``stagger`` (s), the
  conversations' first messages are spread evenly over that time, as users' would be.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench._child import ChildProcess, raise_file_limit

Job = dict[str, Any]
CONNECT_CONCURRENCY = 100
CONTENT = "ping"


class _Client:
    """One Phoenix socket with one joined conversation, matching answers by request id."""

    def __init__(self, ws: ClientConnection, topic: str) -> None:
        self.ws = ws
        self.topic = topic
        self._refs = itertools.count(1)
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._started: dict[str, float] = {}  # request_id / ref -> when it was due to leave
        self.latencies: list[float] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.join_ref = ""

    async def join(self, payload: dict[str, Any]) -> None:
        ref = str(next(self._refs))
        self.join_ref = ref
        await self.ws.send(json.dumps([ref, ref, self.topic, "phx_join", payload]))
        reply = json.loads(await self.ws.recv())
        if reply[3] != "phx_reply" or reply[4]["status"] != "ok":
            raise RuntimeError(f"join refused: {reply}")

    async def send(self, due: float) -> None:
        ref = str(next(self._refs))
        self._started[ref] = due
        self._idle.clear()
        await self.ws.send(json.dumps([self.join_ref, ref, self.topic, "message",
                                       {"content": CONTENT}]))

    @property
    def in_flight(self) -> int:
        return len(self._started)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def read(self) -> None:
        """Read frames until the connection closes, timing each answer."""
        started = self._started
        async for raw in self.ws:
            frame = json.loads(raw)
            event, payload = frame[3], frame[4]
            if event == "phx_reply":
                ref = frame[1]
                if payload["status"] != "ok":
                    raise RuntimeError(f"message refused: {payload}")
                started[payload["response"]["request_id"]] = started.pop(ref)
            elif event == "done" or event == "error":
                if event == "error":
                    raise RuntimeError(f"answer failed: {payload}")
                due = started.pop(payload["request_id"])
                self.latencies.append(time.perf_counter() - due)
                if not started:
                    self._idle.set()


async def _connect(urls: list[str], count: int,
                   factory: type[_Client] | None = None) -> list[_Client]:
    """Connect and join ``count`` sockets (``CONNECT_CONCURRENCY`` handshakes at a time);
    ``factory`` (a ``_Client`` class) makes each client, and names its join payload."""
    make = factory or _Client
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    clients: list[_Client] = []

    async def one(i: int) -> None:
        async with gate:
            ws = await connect(urls[i % len(urls)], max_queue=None, compression=None,
                               ping_interval=None, open_timeout=60)
            client = make(ws, f"conversation:c{i}")
            await client.join({} if factory is None else {"session_id": f"s{i}"})
            clients.append(client)

    async with asyncio.TaskGroup() as tg:
        for i in range(count):
            tg.create_task(one(i))
    return clients


async def _close(clients: Sequence[_Client]) -> None:
    async with asyncio.TaskGroup() as tg:
        for client in clients:
            tg.create_task(client.ws.close())


async def _closed_loop(job: Job) -> dict[str, Any]:
    clients = await _connect(job["urls"], job["clients"])
    running = True

    async def drive(client: _Client) -> None:
        while running:
            await client.send(time.perf_counter())
            await client.wait_idle()

    async with asyncio.TaskGroup() as tg:
        readers = [tg.create_task(c.read()) for c in clients]
        drivers = [tg.create_task(drive(c)) for c in clients]
        await asyncio.sleep(job["warmup"])
        for client in clients:
            client.latencies.clear()
        start = time.perf_counter()
        await asyncio.sleep(job["seconds"])
        elapsed = time.perf_counter() - start
        latencies = [lat for c in clients for lat in c.latencies]
        running = False
        await asyncio.gather(*drivers)
        await _close(clients)
    del readers
    return {"round_trips": len(latencies), "seconds": elapsed, "latencies": latencies}


async def _open_loop(job: Job) -> dict[str, Any]:
    clients = await _connect(job["urls"], job["clients"])
    rate, seconds, warmup = job["rate"], job["seconds"], job["warmup"]
    async with asyncio.TaskGroup() as tg:
        for client in clients:
            tg.create_task(client.read())
        start = time.perf_counter()
        interval = 1.0 / rate
        total = int(rate * (warmup + seconds))
        for n in range(total):
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if n == int(rate * warmup):
                for client in clients:
                    client.latencies.clear()
            await clients[n % len(clients)].send(due)
        await _drain(clients)
        latencies = [lat for c in clients for lat in c.latencies]
        await _close(clients)
    return {"round_trips": len(latencies), "rate": rate, "latencies": latencies}


async def _drain(clients: list[_Client]) -> None:
    async with asyncio.timeout(60):
        for client in clients:
            await client.wait_idle()


async def _hold(job: Job, pipe: Connection) -> dict[str, Any]:
    start = time.perf_counter()
    clients = await _connect(job["urls"], job["clients"])
    seconds = time.perf_counter() - start
    pipe.send({"held": len(clients), "connect_seconds": seconds})
    await asyncio.to_thread(pipe.recv)  # "release"
    await _close(clients)
    return {"released": len(clients)}


def _serve_jobs(pipe: Connection) -> None:
    raise_file_limit()  # 10,000 sockets
    while True:
        job: Job | None = pipe.recv()
        if job is None:
            return
        kind = job["kind"]
        if kind == "closed":
            result = asyncio.run(_closed_loop(job))
        elif kind == "open":
            result = asyncio.run(_open_loop(job))
        elif kind == "streams":
            result = asyncio.run(_streams(job))
        else:
            result = asyncio.run(_hold(job, pipe))
        pipe.send(result)


class _TimedClient(_Client):
    """A conversation that times the gaps between its answers' tokens and counts errors."""

    interval = 0.0
    measuring = False

    def __init__(self, ws: ClientConnection, topic: str) -> None:
        super().__init__(ws, topic)
        self.gaps: list[float] = []
        self.errors = 0
        self.done: list[str] = []
        self._last_token = 0.0

    async def read(self) -> None:
        started = self._started
        async for raw in self.ws:
            frame = json.loads(raw)
            event, payload = frame[3], frame[4]
            if event == "token":
                now = time.perf_counter()
                if self._last_token and _TimedClient.measuring:
                    self.gaps.append(now - self._last_token - self.interval)
                self._last_token = now
            elif event == "phx_reply":
                ref = frame[1]
                if payload["status"] != "ok":
                    self._failed(started.pop(ref))
                    continue
                started[payload["response"]["request_id"]] = started.pop(ref)
            elif event == "done" or event == "error":
                due = started.pop(payload["request_id"])
                if event == "error":
                    self._failed(due)
                    continue
                self.done.append(payload["request_id"])
                if _TimedClient.measuring:
                    self.latencies.append(time.perf_counter() - due)
                self._answered()

    def _failed(self, due: float) -> None:
        del due
        if _TimedClient.measuring:
            self.errors += 1
        self._answered()

    def _answered(self) -> None:
        self._last_token = 0.0
        if not self._started:
            self._idle.set()


async def _streams(job: Job) -> dict[str, Any]:
    from bench._harness import percentile, process_ticks

    _TimedClient.interval = job["interval"]
    _TimedClient.measuring = False
    clients = [c for c in await _connect(job["urls"], job["clients"], _TimedClient)
               if isinstance(c, _TimedClient)]
    running = True
    spread = job.get("stagger", 0.0) / max(1, len(clients))

    async def drive(client: _Client, first: float) -> None:
        await asyncio.sleep(first)  # conversations started at once would stay in step
        while running:
            await client.send(time.perf_counter())
            await client.wait_idle()

    async with asyncio.TaskGroup() as tg:
        readers = [tg.create_task(c.read()) for c in clients]
        drivers = [tg.create_task(drive(c, i * spread)) for i, c in enumerate(clients)]
        await asyncio.sleep(job["warmup"])
        pid = job.get("server_pid")
        ticks = process_ticks(pid) if pid else None
        _TimedClient.measuring = True
        start = time.perf_counter()
        await asyncio.sleep(job["seconds"])
        _TimedClient.measuring = False
        elapsed = time.perf_counter() - start
        after = process_ticks(pid) if pid else None
        running = False
        async with asyncio.timeout(60):
            await asyncio.gather(*drivers)
        await _close(clients)
    del readers
    gaps = [gap * 1000 for c in clients for gap in c.gaps]
    return {"round_trips": sum(len(c.latencies) for c in clients), "seconds": elapsed,
            "errors": sum(c.errors for c in clients), "tokens": len(gaps),
            "added_ms_p50": percentile(gaps, 50) if gaps else None,
            "added_ms_p99": percentile(gaps, 99) if gaps else None,
            "added_ms_max": max(gaps) if gaps else None,
            "request_ids": [rid for c in clients for rid in c.done],
            "server_ticks": None if ticks is None or after is None else after - ticks}


class LoadProcess(ChildProcess):
    """The clients' process: ``await run(job)`` (``hold``: see :meth:`hold`)."""

    def __init__(self) -> None:
        super().__init__(_serve_jobs)

    async def run(self, job: Job) -> dict[str, Any]:
        return await self.ask(job)

    async def hold(self, job: Job) -> dict[str, Any]:
        """Connect and join; return once every socket is joined (then :meth:`release`)."""
        return await self.ask({**job, "kind": "hold"})

    async def release(self) -> None:
        await self.ask("release")
