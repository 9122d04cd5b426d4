"""Channels benchmark: chat round trips over Phoenix sockets, against a raw websockets server.

The server under test runs in this process; the clients (``bench._phx_load``) run in a child
process, so their CPU does not count against the server (on a 2-core machine: one core each).
Both servers are driven by the same client code with the same concurrency. A round trip is one
``message`` on a joined ``conversation:<id>`` channel until its ``done`` push.

* beamish — ``BeamishServer`` on a temporary SQLite file with the echo provider: socket actor
  → channel actor → answer task → echo provider → usage recorder (group commit) → ``done``.
  The answer to ``ping`` is two tokens, so a round trip is one frame in and four out (ok
  reply, two ``token`` pushes, ``done``).
* raw echo — a bare ``websockets`` server answering the same frames with the same four frames
  (JSON decoded and encoded as beamish does), with no actors, provider or store: the cost of
  the WebSocket and JSON work alone.

Figures:

* ``chat_vs_echo_ratio`` — beamish's maximum round trips/s ÷ the raw echo server's maximum
  (goal: >= 0.5). Each server's maximum is its best with ``CONCURRENCY`` connections in a
  closed loop — 64, 128, then 256 — since they saturate at different depths: the raw server
  is CPU-bound with 64 (more get it no further), while beamish holds each answer until its
  usage is durable, so with 64 a third of each round trip is the wait for the group commit
  and its event loop still idles between commits; 128 keep it busy, and with 256 each round
  trip costs more CPU (the connections' objects no longer fit the core's caches). The two
  servers are measured in ``ROUNDS`` alternating rounds of ``ROUND_SECONDS`` per server and
  concurrency, and the figure is the median of the rounds' ratios: the machine's speed
  drifts by tens of percent within a minute, and a ratio of two measurements taken seconds
  apart follows it far less than one of two taken a whole run apart.
  ``chat_vs_echo_ratio_at_<n>`` is the same ratio at one concurrency (no goal: the figure
  earlier runs reported was the one at 64). ``chat_round_trips_per_s``,
  ``echo_round_trips_per_s`` and their p50 latencies are the medians of the rounds' maxima
  (every run is in the JSON).
* ``p99_ms_half_load`` — p99 round trip in ms with messages sent open-loop, over
  ``CONCURRENCY[0]`` connections, at half of beamish's maximum (goal: <= 50). After each
  round, ``HALF_LOAD_WINDOWS`` (one) window of ``HALF_LOAD_SECONDS`` runs at half of the best
  beamish reached in that round, while the machine is as it was; the figure is the median of
  the windows' p99s, as the ratio is the median of the rounds'. The windows are spread over
  the whole run, so a spell of the host taking the CPU (see ``cpu_stolen_pct_*``) spoils
  the windows it falls in, and the figure only if it lasts through most of the run.
  ``p99_ms_half_load_pooled`` (every window's round trips together) and
  ``p99_ms_half_load_worst`` are reported beside it, and each window's rate, p50, p99 and
  CPU stolen are in the JSON. A stall of the server for 50 to 100 ms — on these virtual
  machines mostly its core taken by the hypervisor, now and then a slow fsync of a group
  commit, which every answer waits for — delays about 1% of a 10 s window's answers, enough
  to make that window's p99.
* ``cpu_stolen_pct_rounds``, ``cpu_stolen_pct_half_load`` — the share of the machine's CPU
  time that its hypervisor gave to other guests (``/proc/stat``'s steal) during the
  rounds (the windows between them included) and the windows alone (no goal; in the JSON).
  On virtual machines it changes within minutes, and the half-load p99 follows it: the
  server stalls whenever its core is taken. Half of the maximum is not half of the server's
  core: at the maximum an event-loop turn serves several round trips and the caches stay
  warm, at half of it about one, so each round trip costs more CPU and a host taking a
  fifth of the CPU can saturate the server (figures in ``bench/RESULTS.md``).
* ``cpu_others_pct_rounds``, ``cpu_others_pct_half_load`` — the share of the machine's CPU
  time that processes other than the benchmark's two (this one, with both servers, and the
  clients') used over the same spans (no goal): anything else running on the machine takes
  the cores both servers are measured on, and not from both alike — a busy process beside
  a run raises the ratio, since the raw server and its clients need both cores whole. A
  quiet machine reads 0 (the accounting of a process's time is finer than ``/proc/stat``'s
  ticks, so the difference is clamped at zero).
* ``conn_bytes_10k`` — the server's RSS growth per connected, joined, idle socket with
  ``SOCKETS`` of them, measured once they have been idle past ``hibernate_after`` (goal:
  <= 30 KiB). It counts everything a socket costs: uvicorn's connection, the socket and
  channel actors, the session context the join opened, the conversation's history entry.

The server's per-user message rate is lifted (it would cap throughput) and its idle timeout
raised above the benchmark's length; everything else is ``beamish serve``'s defaults,
including its process settings (``tune_for_serving``: the garbage collector and the GIL's
switch interval) and its logging (``configure_serving_logs``: INFO lines, one JSON line per
chat message among them, here to the null device), which the raw baseline, in the same
process, runs with too (the websockets library logs its connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection, serve

from beamish.auth import TokenSigner
from beamish.request_log import write_request_lines
from beamish.server.serve import BeamishServer, configure_serving_logs, tune_for_serving
from beamish.settings import ServerSettings, Settings
from bench._harness import (
    Report,
    cpu_times,
    others_share,
    percentile,
    process_ticks,
    steal_share,
)
from bench._phx_load import LoadProcess

SECRET = "bench-channels-secret-0123456789abcdef"
USERS = 100
CONCURRENCY = (64, 128, 256)
SOCKETS = 10_000
ROUNDS = 5
ROUND_SECONDS = 4.0
WARMUP = 1.0
HALF_LOAD_SECONDS = 10.0
HALF_LOAD_WINDOWS = 1  # after each round


def _settings(folder: str) -> Settings:
    return Settings(database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
                    secret_key=SecretStr(SECRET),
                    server=ServerSettings(port=0, message_rate_per_s=1e9, message_burst=10**9,
                                          idle_timeout_s=3600.0, max_conversations=10**6,
                                          max_connections_per_ip=0,  # all from loopback
                                          # each client holds one conversation for the
                                          # whole run: thousands of messages, stored
                                          max_stored_messages=10**9,
                                          max_stored_chars=10**12))


def _urls(port: int) -> list[str]:
    signer = TokenSigner(SECRET)
    return [f"ws://127.0.0.1:{port}/socket/websocket?token={signer.issue(f'u{i:03d}')}"
            "&vsn=2.0.0" for i in range(USERS)]


# --- the raw baseline -------------------------------------------------------------------------


async def _raw_echo(ws: ServerConnection) -> None:
    """The frames beamish would send, from a bare websockets handler."""
    async for raw in ws:
        join_ref, ref, topic, event, payload = json.loads(raw)
        if event != "message":
            await ws.send(json.dumps([join_ref, ref, topic, "phx_reply",
                                      {"status": "ok", "response": {}}]))
            continue
        request_id = uuid.uuid4().hex
        await ws.send(json.dumps([join_ref, ref, topic, "phx_reply",
                                  {"status": "ok", "response": {"request_id": request_id}}]))
        for delta in ("[echo] ", payload["content"]):
            await ws.send(json.dumps([join_ref, None, topic, "token",
                                      {"request_id": request_id, "delta": delta}]))
        await ws.send(json.dumps([join_ref, None, topic, "done", {
            "request_id": request_id, "usage": {"prompt_tokens": 1, "completion_tokens": 2},
            "provider": "echo", "model": "echo", "offline": True, "config": {},
            "warnings": []}]))


# --- measurements ------------------------------------------------------------------------------


def _summary(result: dict[str, Any]) -> dict[str, float]:
    lat = [x * 1000 for x in result["latencies"]]
    return {"round_trips": result["round_trips"],
            "p50_ms": statistics.median(lat), "p99_ms": percentile(lat, 99)}


async def _closed(load: LoadProcess, urls: list[str], clients: int, seconds: float,
                  warmup: float) -> dict[str, float]:
    result = await load.run({"kind": "closed", "urls": urls, "clients": clients,
                             "seconds": seconds, "warmup": warmup})
    return {**_summary(result), "per_s": result["round_trips"] / result["seconds"]}


async def _throughput(report: Report, load: LoadProcess, concurrency: tuple[int, ...],
                      rounds: int, seconds: float, warmup: float,
                      half_load_seconds: float, half_load_windows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="beamish-bench-") as folder:
        async with serve(_raw_echo, "127.0.0.1", 0, compression=None) as raw, \
                BeamishServer(_settings(folder)) as server:
            tune_for_serving()  # as beamish serve does once started; the baseline runs with it
            port = raw.sockets[0].getsockname()[1] if raw.sockets else 0
            echo_urls, urls = [f"ws://127.0.0.1:{port}/"], _urls(server.port)
            # runs[name][round][i]: that server's run with concurrency[i] in that round.
            runs: dict[str, list[list[dict[str, float]]]] = {"chat": [], "echo": []}
            rounds_began, ours_began = cpu_times(), _our_ticks(load)
            windows: list[dict[str, Any]] = []
            for _ in range(rounds):  # alternating, so both see the machine as it is now
                for name in runs:
                    runs[name].append([])
                for clients in concurrency:
                    runs["echo"][-1].append(await _closed(load, echo_urls, clients, seconds,
                                                          warmup))
                    runs["chat"][-1].append(await _closed(load, urls, clients, seconds,
                                                          warmup))
                # Half of the maximum beamish just reached, while the machine is as it was.
                rate = max(run["per_s"] for run in runs["chat"][-1]) / 2
                for _ in range(half_load_windows):
                    before, ours = cpu_times(), _our_ticks(load)
                    window = await load.run({
                        "kind": "open", "urls": urls, "clients": concurrency[0],
                        "rate": rate, "seconds": half_load_seconds, "warmup": warmup})
                    after = cpu_times()
                    windows.append({**window, "cpu_stolen": steal_share(before, after),
                                    "cpu_others": others_share(
                                        before, after, _ticks_since(ours, load))})
            rounds_ended = cpu_times()
            rounds_steal = steal_share(rounds_began, rounds_ended)
            rounds_others = others_share(rounds_began, rounds_ended,
                                         _ticks_since(ours_began, load))
            best = {name: [max(r, key=lambda run: run["per_s"]) for r in by_round]
                    for name, by_round in runs.items()}
    per_window = [{**_summary(w), "rate_per_s": w["rate"], "cpu_stolen": w["cpu_stolen"],
                   "cpu_others": w["cpu_others"]} for w in windows]
    pooled = _summary({"round_trips": sum(w["round_trips"] for w in windows),
                       "latencies": [lat for w in windows for lat in w["latencies"]]})
    ratios = [c["per_s"] / e["per_s"] for c, e in zip(best["chat"], best["echo"], strict=True)]
    report.add("chat_vs_echo_ratio", statistics.median(ratios), "x", ">= 0.5")
    report.add("p99_ms_half_load", statistics.median(w["p99_ms"] for w in per_window), "ms",
               "<= 50")
    for name, maxima in best.items():
        report.add(f"{name}_round_trips_per_s", statistics.median(b["per_s"] for b in maxima),
                   "round trips/s")
        report.add(f"{name}_p50_ms", statistics.median(b["p50_ms"] for b in maxima), "ms")
    for i, clients in enumerate(concurrency):
        report.add(f"chat_vs_echo_ratio_at_{clients}", statistics.median(
            c[i]["per_s"] / e[i]["per_s"] for c, e in zip(runs["chat"], runs["echo"],
                                                          strict=True)), "x")
    report.add("p50_ms_half_load", statistics.median(w["p50_ms"] for w in per_window), "ms")
    report.add("p99_ms_half_load_pooled", pooled["p99_ms"], "ms")
    report.add("p99_ms_half_load_worst", max(w["p99_ms"] for w in per_window), "ms")
    for kind, whole in (("stolen", rounds_steal), ("others", rounds_others)):
        known = [w[f"cpu_{kind}"] for w in windows if w[f"cpu_{kind}"] is not None]
        for name, share in (("rounds", whole),
                            ("half_load", statistics.mean(known) if known else None)):
            if share is not None:
                report.add(f"cpu_{kind}_pct_{name}", 100 * share, "%")
    report.raw.update(concurrency=list(concurrency), round_seconds=seconds, ratios=ratios,
                      runs=runs, half_load={**pooled, "windows": per_window})


def _our_ticks(load: LoadProcess) -> int | None:
    """CPU ticks used so far by this process (both servers) and the clients' process."""
    server, clients = process_ticks(), process_ticks(load.pid)
    return None if server is None or clients is None else server + clients


def _ticks_since(began: int | None, load: LoadProcess) -> int | None:
    now = _our_ticks(load)
    return None if began is None or now is None else now - began


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _settled() -> int:
    gc.collect()
    await asyncio.sleep(0)
    return _rss()


async def _memory(report: Report, load: LoadProcess, sockets: int, settle: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="beamish-bench-") as folder:
        async with BeamishServer(_settings(folder)) as server:
            tune_for_serving()
            urls = _urls(server.port)
            # Warm every code path (and the clients' process) before the baseline.
            await load.hold({"urls": urls, "clients": 200})
            await load.release()
            await asyncio.sleep(0.5)
            before = await _settled()
            held = await load.hold({"urls": urls, "clients": sockets})
            wait = (server.endpoint.options.hibernate_after or 0.0) + 1.0 if settle else 0.5
            await asyncio.sleep(wait)  # idle sockets, as they are most of the time
            after = await _settled()
            hibernated = sum(1 for a in server.runtime.node.actors()
                             if a.status == "hibernated")
            count = server.endpoint.socket_count
            await load.release()
    report.add(f"conn_bytes_{sockets // 1000}k", (after - before) / sockets, "bytes",
               "<= 30720" if sockets == SOCKETS else "")
    report.raw.update(sockets=count, settled_s=wait, connect_seconds=held["connect_seconds"],
                      rss_before=before, rss_after=after, hibernated_actors=hibernated)


async def _run(report: Report, quick: bool) -> None:
    load = LoadProcess()
    try:
        if quick:
            await _throughput(report, load, concurrency=(16, 32), rounds=1, seconds=1.0,
                              warmup=0.3, half_load_seconds=1.0, half_load_windows=1)
            await _memory(report, load, sockets=500, settle=False)
        else:
            await _throughput(report, load, CONCURRENCY, ROUNDS, ROUND_SECONDS, WARMUP,
                              HALF_LOAD_SECONDS, HALF_LOAD_WINDOWS)
            await _memory(report, load, SOCKETS, settle=True)
    finally:
        load.close()


class _CountedLines:
    """A text stream onto another, counting the lines written through it."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


@contextlib.contextmanager
def _serving_logs(report: Report) -> Iterator[None]:
    """``beamish serve``'s logging for the length of the run, to the null device: every line
    is made and written as to stderr, and none lands on the disk the ledger's commits wait
    for (where a log file goes is the deployment's choice)."""
    root = logging.getLogger()
    with open(os.devnull, "w", encoding="utf-8") as null:
        stream = _CountedLines(null)
        handlers, level = root.handlers, root.level
        root.handlers = []
        configure_serving_logs(stream)
        try:
            yield
        finally:
            write_request_lines(None)
            root.handlers, root.level = handlers, level
    report.raw["log_lines"] = stream.lines


def run(quick: bool) -> Report:
    """Measure round trips (beamish and raw), latency at half load, memory per socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report = Report("channels")
    with _serving_logs(report):
        asyncio.run(_run(report, quick))
    return report
