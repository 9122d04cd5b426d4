"""Gateway benchmark: the real provider path of one ``beamish serve`` process, against the
same upstream called directly.

Four processes besides this one, so that no two share an event loop:

* the server — ``python -m beamish.cli serve`` as a subprocess, as an operator runs it: a
  SQLite file in a temporary directory, text logs at their default level on stderr (one line
  per LLM request; drained by this process, so logging costs the server what it costs in
  production and can never block it), everything else at its defaults but the per-address
  connection cap (every client is on loopback) and the socket idle timeout;
* the fake upstream (``bench._upstream``) — raw asyncio speaking the OpenAI chat completions
  wire format, registered through the admin API (``POST /api/admin/providers``, kind
  ``openai_compatible``, then ``POST /api/admin/providers/{name}/validate``, which stores its
  model list) and made the bench user's default (``PUT /api/users/{user}/llm-config``);
* the load generators — raw asyncio HTTP/1.1 keep-alive clients (``bench._http_load``) for
  the HTTP figures, and Phoenix clients (``bench._phx_load``) for the channel figure. The
  same HTTP client code drives the upstream directly (the baseline) and beamish.

Each HTTP figure is measured in ``ROUNDS`` rounds; in each round the baseline (straight to
the upstream, same body, same concurrency) runs right before beamish, so both see the
machine as it is then. The figure is the median of the rounds. Every run starts with
``WARMUP`` s of traffic that is not measured. A non-2xx answer, or a stream that does not
end as a finished stream does, counts as an error and not as a request served.

Figures:

* ``gateway_overhead_ms_p50`` — one client, requests one after another: the p50 latency of
  ``POST /v1/chat/completions`` (non-streaming, ``model: "beamish"``: the user's default)
  minus the p50 of the same request to the upstream (goal: <= 1.0 ms).
* ``gateway_rps_c32`` — non-streaming ``/v1/chat/completions`` served per second by 32
  connections in a closed loop (goal: >= 1,500).
* ``gateway_stream_rps_c32`` — the same with ``"stream": true, "stream_options":
  {"include_usage": true}`` as the openai SDK sends it; the upstream answers 20 content
  chunks and a usage chunk (goal: >= 600).
* ``session_completion_rps_c32`` — ``POST /api/sessions/{id}/completions`` (``content``,
  non-streaming) served per second by 32 connections, all in the bench user's one session
  (goal: >= 1,500); its baseline is the upstream's non-streaming rate.
* ``channel_streams_50tps`` — conversations on the Phoenix channel (``conversation:<id>``),
  each sending its next message as soon as the last is ``done``, each answer 50 tokens
  streamed by the upstream at 50 tokens/s (model ``paced-50tps-chunks-50``, the channel
  users' default; the conversations' first messages spread over one answer's second, as
  users' would be, not in step). The server sustains ``n`` conversations when the p99 of
  the added inter-token delay at the client (the gap between two ``token`` pushes of an
  answer, less 20 ms) over a ``CHANNEL_SECONDS`` window is <= 25 ms — the median of up to
  ``CHANNEL_TRIES`` tries, so that one spell of another process taking the CPU does not
  decide a step (a third try runs only when the first two disagree) — and no answer
  failed in any try.
  The search (``next_step``) starts at ``CHANNEL_FIRST`` and doubles ``n`` while it is
  sustained (up to ``CHANNEL_CEILING``), then halves the interval between the largest ``n``
  sustained and the smallest not, until they are within ``CHANNEL_RESOLUTION`` of each
  other; the figure is the largest ``n`` sustained (0 if none was) (goal: >= 2,000).
  Before each step, as many paced streams straight from the upstream give the baseline's
  added delay, so a step that the machine itself cannot carry (the clients' process and the
  upstream share its two cores with the server) shows in ``raw.channel_steps``.
* ``usage_rows_missing`` — after the server has stopped: the request ids of every answer the
  clients saw served (``X-Request-Id`` of the HTTP answers, the ``done`` pushes' ids),
  warm-up included, less those with a row in the SQLite ledger (goal: <= 0).
* ``upstream_*`` — the upstream's own figures, straight to it, medians of the baselines.
* ``cpu_others_pct``, ``cpu_stolen_pct`` — the share of the machine's CPU time that
  processes other than the benchmark's five (this one, the server, the upstream and both
  load generators) used while it ran, and that the hypervisor gave to other guests (no
  goal; read them before the figures: the server and its baselines need the cores whole).

``raw`` holds, per throughput figure (``raw.http``), each round's rate for beamish and the
baseline, the server's CPU per request served (``cpu_ms_per_request``: its utime + stime
from ``/proc/<pid>/stat`` over the measured window, divided by the requests served in it),
the errors and a few error samples; per channel step (``raw.channel_steps``), each try's
added-delay percentiles, answers/s, the server's CPU per answer and the direct streams'
p99; ``raw.usage``, the counts behind ``usage_rows_missing``.

Read it on an otherwise idle machine: the upstream and the clients take CPU from the same
two cores as the server. ``--quick`` is a smoke run (one short round, small channel steps),
not a figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.fernet import Fernet

from beamish.auth import TokenSigner
from bench._harness import (
    Report,
    cpu_times,
    others_share,
    percentile,
    process_ticks,
    steal_share,
)
from bench._http_load import HttpLoadProcess, request
from bench._phx_load import LoadProcess
from bench._upstream import UpstreamProcess

ROUNDS = 3
SECONDS = 4.0
WARMUP = 1.0
CONCURRENCY = 32
CHANNEL_FIRST = 25
CHANNEL_CEILING = 4000
CHANNEL_RESOLUTION = 1.15
CHANNEL_TRIES = 3
CHANNEL_SECONDS = 5.0
CHANNEL_WARMUP = 2.0
CHANNEL_USERS = 100
PACE_S = 1 / 50
ANSWER_S = 50 * PACE_S  # one answer of PACED_MODEL; conversations start spread over it
ADDED_P99_MS = 25.0
USER = "bench"
SESSION = "bench-session"
MODEL = "chunks-20"
PACED_MODEL = "paced-50tps-chunks-50"
UPSTREAM_KEY = "bench-upstream-key"
PROMPT = "how much does the gateway add to a call"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass
class _Plan:
    rounds: int
    seconds: float
    warmup: float
    channel_first: int
    channel_ceiling: int
    channel_seconds: float
    channel_warmup: float
    channel_tries: int


FULL = _Plan(ROUNDS, SECONDS, WARMUP, CHANNEL_FIRST, CHANNEL_CEILING, CHANNEL_SECONDS,
             CHANNEL_WARMUP, CHANNEL_TRIES)
QUICK = _Plan(1, 1.0, 0.3, 10, 20, 1.5, 1.2, 1)


def next_step(sustained: int, failed: int | None, first: int, ceiling: int) -> int | None:
    """The next number of conversations to try, or None when the search is over.

    ``sustained`` is the largest number that held (0 if none yet), ``failed`` the smallest
    that did not (None if none yet): double from ``first`` up to ``ceiling``, then halve the
    interval between the two until they are within ``CHANNEL_RESOLUTION`` (or 2) of each
    other.
    """
    if failed is None:
        if sustained >= ceiling:
            return None
        return first if sustained == 0 else min(ceiling, sustained * 2)
    if failed - sustained <= 2 or failed <= sustained * CHANNEL_RESOLUTION:
        return None
    return (sustained + failed) // 2


# --- the server -------------------------------------------------------------------------------


@dataclass
class _Served:
    """``beamish serve`` in a subprocess, its stdout and stderr drained by two threads."""

    process: subprocess.Popen[bytes]
    folder: Path
    port: int = 0
    log_lines: int = 0
    tail: list[str] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.folder / "bench.db"


def _server_env(folder: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEAMISH_")}
    env.update(PYTHONUNBUFFERED="1", BEAMISH_SECRET_KEY=key,
               BEAMISH_DATABASE_URL=f"sqlite:///{folder / 'bench.db'}",
               BEAMISH_SERVER__MAX_CONNECTIONS_PER_IP="0",  # every client is on loopback
               BEAMISH_SERVER__IDLE_TIMEOUT_S="3600")
    return env


def _drain(served: _Served, stream: Any, port_found: threading.Event | None) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        served.log_lines += 1
        served.tail = [*served.tail[-19:], line]
        if port_found is not None and not port_found.is_set() and "serving on http://" in line:
            served.port = int(line.split("serving on http://", 1)[1].split()[0]
                              .rsplit(":", 1)[1])
            port_found.set()
    if port_found is not None:
        port_found.set()  # exited before serving: the caller finds port 0


@contextlib.contextmanager
def _serve(folder: Path, key: str) -> Iterator[_Served]:
    process = subprocess.Popen(
        [sys.executable, "-m", "beamish.cli", "serve", "--port", "0"], cwd=folder,
        env=_server_env(folder, key), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    served = _Served(process, folder)
    found = threading.Event()
    threads = [threading.Thread(target=_drain, args=(served, process.stdout, found),
                                daemon=True),
               threading.Thread(target=_drain, args=(served, process.stderr, None),
                                daemon=True)]
    for thread in threads:
        thread.start()
    try:
        if not found.wait(START_TIMEOUT_S) or served.port == 0:
            raise RuntimeError("beamish serve did not start:\n" + "".join(served.tail))
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in threads:
            thread.join(10)


# --- setting it up as an operator would -------------------------------------------------------


@dataclass
class _Setup:
    signer: TokenSigner
    user_token: str
    upstream_url: str


async def _register(served: _Served, upstream: UpstreamProcess, key: str) -> _Setup:
    signer = TokenSigner(key)
    admin = {"Authorization": f"Bearer {signer.issue('bench-admin', admin=True)}"}
    user_token = signer.issue(USER)
    user = {"Authorization": f"Bearer {user_token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}",
                                 timeout=30) as http:
        _ok(await http.post("/api/admin/providers", headers=admin, json={
            "name": "openai_compatible", "kind": "openai_compatible",
            "base_url": upstream.base_url, "api_key": UPSTREAM_KEY}))
        checked = _ok(await http.post("/api/admin/providers/openai_compatible/validate",
                                      headers=admin))
        if checked["status"] != "reachable":
            raise RuntimeError(f"the upstream did not validate: {checked}")
        _ok(await http.put(f"/api/users/{USER}/llm-config", headers=user,
                           json={"provider": "openai_compatible", "model": MODEL}))
        for n in range(CHANNEL_USERS):
            _ok(await http.put(f"/api/users/{_channel_user(n)}/llm-config", headers=admin,
                               json={"provider": "openai_compatible", "model": PACED_MODEL}))
        _ok(await http.post("/api/sessions", headers=user, json={"session_id": SESSION}))
        answer = _ok(await http.post("/v1/chat/completions", headers=user, json={
            "model": "beamish", "messages": [{"role": "user", "content": PROMPT}]}))
        if answer["model"] != MODEL or answer["choices"][0]["message"]["content"] != \
                "tok " * 20:
            raise RuntimeError(f"/v1 did not answer from the upstream: {answer}")
    return _Setup(signer, user_token, upstream.base_url)


def _ok(answer: httpx.Response) -> Any:
    if not answer.is_success:
        raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: "
                           f"{answer.status_code} {answer.text}")
    return answer.json()


def _channel_user(n: int) -> str:
    return f"chat{n:03d}"


# --- the requests -------------------------------------------------------------------------------


def _chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return orjson.dumps(body)


@dataclass(frozen=True)
class _Target:
    """One kind of request, to the upstream and to beamish."""

    name: str
    direct: dict[str, Any]
    beamish: dict[str, Any]


def _targets(served: _Served, upstream: UpstreamProcess, setup: _Setup) -> list[_Target]:
    up = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    ours = {"Authorization": f"Bearer {setup.user_token}"}
    v1 = "/v1/chat/completions"

    def job(port: int, headers: dict[str, str], path: str, body: bytes,
            check: str = "json") -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": port, "check": check,
                "request": request("POST", path, port, headers, body)}

    direct_json = job(upstream.port, up, v1, _chat_body(MODEL, False))
    return [
        _Target("sequential", direct_json,
                job(served.port, ours, v1, _chat_body("beamish", False))),
        _Target("json", direct_json, job(served.port, ours, v1, _chat_body("beamish", False))),
        _Target("stream", job(upstream.port, up, v1, _chat_body(MODEL, True), "v1_stream"),
                job(served.port, ours, v1, _chat_body("beamish", True), "v1_stream")),
        _Target("session", direct_json,
                job(served.port, ours, f"/api/sessions/{SESSION}/completions",
                    orjson.dumps({"content": PROMPT}))),
    ]


# --- measuring ----------------------------------------------------------------------------------


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    served = result["served"]
    latencies = [x * 1000 for x in result["latencies"]]
    ticks = result["server_ticks"]
    return {"per_s": served / result["seconds"], "served": served,
            "errors": result["errors"],
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p99_ms": percentile(latencies, 99) if latencies else None,
            "cpu_ms_per_request": None if ticks is None or not served
            else ticks * 1000 / os.sysconf("SC_CLK_TCK") / served,
            "error_samples": result["error_samples"]}


async def _rounds(load: HttpLoadProcess, targets: list[_Target], plan: _Plan, pid: int,
                  acknowledged: list[str]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for _ in range(plan.rounds):
        for target in targets:
            clients = 1 if target.name == "sequential" else CONCURRENCY
            timing = {"clients": clients, "seconds": plan.seconds, "warmup": plan.warmup}
            direct = await load.run({**target.direct, **timing})
            ours = await load.run({**target.beamish, **timing, "server_pid": pid})
            acknowledged += ours["request_ids"]
            runs[target.name].append({"direct": _summary(direct), "beamish": _summary(ours)})
    return runs


def _median(runs: list[dict[str, Any]], side: str, key: str) -> float:
    values = [run[side][key] for run in runs if run[side][key] is not None]
    return statistics.median(values) if values else float("nan")


def _report_http(report: Report, runs: dict[str, list[dict[str, Any]]]) -> None:
    sequential = runs["sequential"]
    report.add("gateway_overhead_ms_p50", statistics.median(
        r["beamish"]["p50_ms"] - r["direct"]["p50_ms"] for r in sequential), "ms", "<= 1.0")
    for name, figure, goal in (("json", "gateway_rps_c32", ">= 1500"),
                               ("stream", "gateway_stream_rps_c32", ">= 600"),
                               ("session", "session_completion_rps_c32", ">= 1500")):
        report.add(figure, _median(runs[name], "beamish", "per_s"), "req/s", goal)
    report.add("upstream_ms_p50", _median(sequential, "direct", "p50_ms"), "ms")
    report.add("upstream_rps_c32", _median(runs["json"], "direct", "per_s"), "req/s")
    report.add("upstream_stream_rps_c32", _median(runs["stream"], "direct", "per_s"), "req/s")
    report.raw["http"] = {name: {
        "beamish_per_s": _median(r, "beamish", "per_s"),
        "direct_per_s": _median(r, "direct", "per_s"),
        "beamish_p50_ms": _median(r, "beamish", "p50_ms"),
        "direct_p50_ms": _median(r, "direct", "p50_ms"),
        "cpu_ms_per_request": _median(r, "beamish", "cpu_ms_per_request"),
        "errors": sum(run["beamish"]["errors"] for run in r),
        "direct_errors": sum(run["direct"]["errors"] for run in r),
        "rounds": r} for name, r in runs.items()}


@dataclass
class _ChannelStep:
    """How to run one step of the channel search: the jobs, less the count of clients."""

    load: HttpLoadProcess
    phx: LoadProcess
    direct_job: dict[str, Any]
    beamish_job: dict[str, Any]
    tries: int
    acknowledged: list[str]

    async def attempt(self, count: int) -> dict[str, Any]:
        """One try: ``count`` paced streams straight to the upstream, then as many
        conversations through beamish."""
        direct = await self.load.run({**self.direct_job, "clients": count})
        ours = await self.phx.run({**self.beamish_job, "clients": count})
        self.acknowledged += ours.pop("request_ids")
        gaps = [gap * 1000 for gap in direct["gaps"]]
        ticks = ours["server_ticks"]
        return {**ours, "answers_per_s": ours["round_trips"] / ours["seconds"],
                "cpu_ms_per_answer": None if ticks is None or not ours["round_trips"]
                else ticks * 1000 / os.sysconf("SC_CLK_TCK") / ours["round_trips"],
                "direct_added_ms_p99": percentile(gaps, 99) if gaps else None,
                "direct_errors": direct["errors"],
                "direct_streams_per_s": direct["served"] / direct["seconds"]}

    async def run(self, count: int) -> dict[str, Any]:
        """Up to ``tries`` tries; the step holds when the median try's p99 is within the
        bound and no answer of any try failed. A third try runs only when the first two
        disagree (the median of three is then decided by it)."""
        tries: list[dict[str, Any]] = []
        while len(tries) < self.tries:
            tries.append(await self.attempt(count))
            within = [_held(t) for t in tries]
            if len(tries) == 2 and within[0] == within[1]:
                break
        p99s = [t["added_ms_p99"] if t["added_ms_p99"] is not None else float("inf")
                for t in tries]
        held = (statistics.median(p99s) <= ADDED_P99_MS
                and all(t["errors"] == 0 and t["round_trips"] > 0 for t in tries))
        return {"conversations": count, "passed": held,
                "added_ms_p99": statistics.median(p99s), "tries": tries}


def _held(attempt: dict[str, Any]) -> bool:
    p99 = attempt["added_ms_p99"]
    return p99 is not None and p99 <= ADDED_P99_MS and attempt["errors"] == 0


async def _channel_search(report: Report, load: HttpLoadProcess, phx: LoadProcess,
                          served: _Served, upstream: UpstreamProcess, setup: _Setup,
                          plan: _Plan, acknowledged: list[str]) -> None:
    urls = [f"ws://127.0.0.1:{served.port}/socket/websocket?token="
            f"{setup.signer.issue(_channel_user(n))}&vsn=2.0.0" for n in range(CHANNEL_USERS)]
    timing = {"interval": PACE_S, "seconds": plan.channel_seconds,
              "warmup": plan.channel_warmup, "stagger": ANSWER_S}
    step = _ChannelStep(
        load, phx, tries=plan.channel_tries, acknowledged=acknowledged,
        direct_job={**timing, "host": "127.0.0.1", "port": upstream.port,
                    "check": "v1_stream",
                    "request": request("POST", "/v1/chat/completions", upstream.port,
                                       {"Authorization": f"Bearer {UPSTREAM_KEY}"},
                                       _chat_body(PACED_MODEL, True))},
        beamish_job={**timing, "kind": "streams", "urls": urls,
                     "server_pid": served.process.pid})
    steps: list[dict[str, Any]] = []
    sustained, failed = 0, None
    count = next_step(sustained, failed, plan.channel_first, plan.channel_ceiling)
    while count is not None:
        steps.append(await step.run(count))
        if steps[-1]["passed"]:
            sustained = count
        else:
            failed = count
        count = next_step(sustained, failed, plan.channel_first, plan.channel_ceiling)
    report.add("channel_streams_50tps", sustained, "conversations", ">= 2000")
    report.raw["channel_steps"] = steps


def _usage_rows_missing(report: Report, database: Path, acknowledged: list[str]) -> None:
    connection = sqlite3.connect(database)
    try:
        recorded = {row[0] for row in connection.execute(
            "SELECT request_id FROM usage_events WHERE status = 'ok'")}
    finally:
        connection.close()
    missing = [rid for rid in set(acknowledged) if rid not in recorded]
    report.add("usage_rows_missing", len(missing), "rows", "<= 0")
    report.raw["usage"] = {"acknowledged": len(acknowledged),
                           "distinct_acknowledged": len(set(acknowledged)),
                           "ledger_ok_rows": len(recorded), "missing_sample": missing[:5]}


def _ticks(pids: list[int | None]) -> int | None:
    """CPU ticks used so far by these processes (None: this one), or None without /proc."""
    ticks = [process_ticks(pid) for pid in pids]
    return None if None in ticks else sum(t for t in ticks if t is not None)


def _report_machine(report: Report, began: list[int] | None, ended: list[int] | None,
                    ours: int | None) -> None:
    """The share of the machine's CPU that other processes and its hypervisor took."""
    for name, share in (("cpu_others_pct", others_share(began, ended, ours)),
                        ("cpu_stolen_pct", steal_share(began, ended))):
        if share is not None:
            report.add(name, 100 * share, "%")


async def _run(report: Report, plan: _Plan) -> None:
    upstream = UpstreamProcess()
    load = HttpLoadProcess()
    phx = LoadProcess()
    key = Fernet.generate_key().decode()
    acknowledged: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="beamish-bench-") as name:
            folder = Path(name)
            with _serve(folder, key) as served:
                pids = [None, served.process.pid, upstream.pid, load.pid, phx.pid]
                began, ours = cpu_times(), _ticks(pids)
                setup = await _register(served, upstream, key)
                runs = await _rounds(load, _targets(served, upstream, setup), plan,
                                     served.process.pid, acknowledged)
                await _channel_search(report, load, phx, served, upstream, setup, plan,
                                      acknowledged)
                ended, spent = cpu_times(), _ticks(pids)
            _report_machine(report, began, ended,
                            None if ours is None or spent is None else spent - ours)
            report.raw["server_exit"] = served.process.returncode
            report.raw["log_lines"] = served.log_lines
            _report_http(report, runs)
            _usage_rows_missing(report, served.database, acknowledged)
    finally:
        phx.close()
        load.close()
        upstream.close()


def run(quick: bool) -> Report:
    """Measure the /v1, session and channel paths through a real upstream."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report = Report("gateway")
    asyncio.run(_run(report, QUICK if quick else FULL))
    return report
