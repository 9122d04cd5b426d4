"""The HTTP load generator of ``python -m bench gateway``: keep-alive clients in their own process.

Raw asyncio: each connection is an ``asyncio.Protocol`` with a minimal HTTP/1.1 response
parser (status line, ``content-length`` or chunked bodies), so the clients spend as little
CPU as the machine allows and the same code drives the upstream directly and beamish. The
parent (:class:`HttpLoadProcess`) sends one job at a time over a pipe and gets its figures
back.

A job (``request`` is the whole request, bytes, sent again and again on each connection):
``clients`` connections, each sending its next request as soon as the last answer is
complete, for ``warmup`` then ``seconds``. An answer is *served* when its status is 2xx and,
for a stream (``check: "v1_stream"``), its body ends as a finished OpenAI stream does
(``data: [DONE]``, and no ``error`` frame before it);
anything else counts as an error (and a dropped connection is reopened). It returns
``served`` and ``errors`` in the measured window, their latencies, the ``X-Request-Id`` of
every served answer (warm-up included: the ledger must hold them all), the CPU ticks of
process ``server_pid`` over the window, and a few error samples.

With ``interval`` set (a paced upstream model: one token every ``interval`` s), the job also
returns ``gaps``: the time between consecutive HTTP chunks of each stream in the window,
less ``interval`` — the delay added on the way. With ``stagger`` (s), the connections'
first requests are spread evenly over that time (streams started at once stay in step).
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection
from typing import Any

from bench._child import ChildProcess, raise_file_limit
from bench._harness import process_ticks

Job = dict[str, Any]
MAX_ERROR_SAMPLES = 5
DRAIN_TIMEOUT_S = 60.0


class _Run:
    """What the connections of one job share: whether to go on, and the tallies."""

    def __init__(self, job: Job) -> None:
        self.request: bytes = job["request"]
        self.check: str = job.get("check", "json")
        self.interval: float = job.get("interval", 0.0)
        self.running = True
        self.measuring = False
        self.served = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.gaps: list[float] = []
        self.request_ids: list[str] = []
        self.error_samples: list[str] = []
        self.in_flight = 0
        self.idle = asyncio.Event()
        self._spread = float(job.get("stagger", 0.0)) / max(1, int(job["clients"]))
        self._started = 0

    def next_start(self) -> float:
        """How long a new connection waits before its first request (``stagger``)."""
        delay = self._started * self._spread
        self._started += 1
        return delay

    def finished(self, status: int, request_id: str | None, body: bytes, started: float) -> None:
        self.in_flight -= 1
        ok = 200 <= status < 300 and self._complete(body)
        if ok and request_id is not None:
            self.request_ids.append(request_id)
        if self.measuring:
            if ok:
                self.served += 1
                self.latencies.append(time.perf_counter() - started)
            else:
                self.errors += 1
        if not ok and len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{status}: {body[-300:]!r}")
        if self.in_flight == 0:
            self.idle.set()

    def failed(self, reason: str) -> None:
        self.in_flight -= 1
        if self.measuring:
            self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(reason)
        if self.in_flight == 0:
            self.idle.set()

    def _complete(self, body: bytes) -> bool:
        if self.check == "v1_stream":
            return body.endswith(b"data: [DONE]\n\n") and b'data: {"error"' not in body
        return True


class _Client(asyncio.Protocol):
    """One keep-alive connection in a closed loop; parses each answer as it arrives."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.lost = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.request_id: str | None = None
        self.length = -1  # content-length, or -1 for chunked, while the head is unread
        self.chunked = False
        self.head_done = False
        self.body = bytearray()
        self.started = 0.0
        self.last_chunk = 0.0
        self.waiting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        delay = self.run.next_start()
        if delay:
            asyncio.get_running_loop().call_later(delay, self.send)
        else:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiting:
            self.run.failed(f"connection lost: {exc!r}")
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self) -> None:
        if self.transport is None or not self.run.running:
            return
        self._reset()
        self.waiting = True
        self.run.in_flight += 1
        self.run.idle.clear()
        self.started = time.perf_counter()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.head_done and not self._head():
            return
        if self.chunked:
            done = self._chunks()
        else:
            done = len(self.buffer) >= self.length
            if done:
                self.body = self.buffer[:self.length]
                del self.buffer[:self.length]
        if done:
            self.waiting = False
            self.run.finished(self.status, self.request_id, bytes(self.body), self.started)
            self.send()

    def _head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[:end + 4]
        self.status = int(lines[0][9:12])
        self.length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
            elif name == b"x-request-id":
                self.request_id = value.strip().decode()
        self.head_done = True
        return True

    def _chunks(self) -> bool:
        """Read the chunks received so far; True once the last (empty) one is read."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return False
            size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
            if len(self.buffer) < end + 2 + size + 2:
                return False
            if size == 0:
                del self.buffer[:end + 4]
                return True
            self.body += self.buffer[end + 2:end + 2 + size]
            del self.buffer[:end + 2 + size + 2]
            self._chunk_arrived()

    def _chunk_arrived(self) -> None:
        if not self.run.interval:
            return
        now = time.perf_counter()
        if self.last_chunk and self.run.measuring:
            self.run.gaps.append(now - self.last_chunk - self.run.interval)
        self.last_chunk = now


async def _open(job: Job, run: _Run) -> list[_Client]:
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    gate = asyncio.Semaphore(100)

    async def one() -> None:
        async with gate:
            _, client = await loop.create_connection(lambda: _Client(run), job["host"],
                                                     job["port"])
            clients.append(client)

    async with asyncio.TaskGroup() as tg:
        for _ in range(job["clients"]):
            tg.create_task(one())
    return clients


async def _reopen(job: Job, run: _Run, clients: list[_Client]) -> None:
    """Keep ``clients`` connections open: a dropped one is replaced (its error counted)."""
    loop = asyncio.get_running_loop()
    while run.running:
        lost = [c.lost for c in clients if c.transport is not None]
        if not lost:
            break
        await asyncio.wait([*lost], return_when=asyncio.FIRST_COMPLETED)
        for i, client in enumerate(clients):
            if client.transport is None and run.running:
                _, clients[i] = await loop.create_connection(lambda: _Client(run),
                                                             job["host"], job["port"])


async def _closed(job: Job) -> dict[str, Any]:
    run = _Run(job)
    clients = await _open(job, run)
    keeper = asyncio.ensure_future(_reopen(job, run, clients))
    try:
        await asyncio.sleep(job["warmup"])
        pid = job.get("server_pid")
        ticks = process_ticks(pid) if pid else None
        run.measuring = True
        start = time.perf_counter()
        await asyncio.sleep(job["seconds"])
        run.measuring = False
        elapsed = time.perf_counter() - start
        after = process_ticks(pid) if pid else None
        run.running = False
        if run.in_flight:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await run.idle.wait()
    finally:
        run.running = False
        keeper.cancel()
        for client in clients:
            if client.transport is not None:
                client.transport.close()
    return {"served": run.served, "errors": run.errors, "seconds": elapsed,
            "latencies": run.latencies, "gaps": run.gaps, "request_ids": run.request_ids,
            "error_samples": run.error_samples,
            "server_ticks": None if ticks is None or after is None else after - ticks}


def _serve_jobs(pipe: Connection) -> None:
    raise_file_limit()
    while True:
        job: Job | None = pipe.recv()
        if job is None:
            return
        pipe.send(asyncio.run(_closed(job)))


class HttpLoadProcess(ChildProcess):
    """The HTTP clients' process: ``await run(job)``."""

    def __init__(self) -> None:
        super().__init__(_serve_jobs)

    async def run(self, job: Job) -> dict[str, Any]:
        return await self.ask(job)


def request(method: str, path: str, port: int, headers: dict[str, str] | None = None,
            body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
