"""A terminal chat with beamish over its Phoenix conversation channel, using ``websockets``.

Start a server (``beamish serve``), make a token (``beamish token create --user ada``), then::

    python -m examples.chat_client --token "$TOKEN" --conversation c1
    > hello
    [echo] hello
      (usage: 2 prompt + 2 completion tokens · echo/echo-1)
    > /model echo:echo-fancy
    > /usage

Each line read from standard input is a ``message``; the answer is printed token by token as
it streams, then a usage line once ``done`` arrives. ``/model provider:model`` stores your
default model (``set_preference``), ``/usage`` prints this session's and your totals, and
Ctrl-C, Ctrl-D (end of input) or ``/quit`` leave the channel and close the socket cleanly.

Options (defaults in brackets): ``--url`` [ws://127.0.0.1:4000/socket/websocket];
``--token`` [$BEAMISH_TOKEN]; ``--conversation`` [default] — the topic is
``conversation:<id>``; ``--session`` [a new session] — a session id to resume or create.

The token travels in the ``base64url.bearer.phx.`` subprotocol, as the phoenix JS client's
``authToken`` option sends it, so it stays out of URLs and access logs. Frames are Phoenix V2
arrays ``[join_ref, ref, topic, event, payload]``; a heartbeat goes out every 30 s and a
missing reply ends the chat, as the phoenix client would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

T = TypeVar("T")

DEFAULT_URL = "ws://127.0.0.1:4000/socket/websocket"
HEARTBEAT_S = 30.0
REPLY_TIMEOUT_S = 10.0  # the phoenix JS client's push timeout
AUTH_PREFIX = "base64url.bearer.phx."


class ChatError(Exception):
    """The server refused something or went away; the message says what."""


@dataclass(frozen=True, slots=True)
class Ended:
    """A stream's terminal push: ``done`` or ``error``."""

    event: str
    payload: dict[str, Any]


class PhoenixChannel:
    """One joined topic over one socket: calls matched to replies by ref, pushes dispatched.

    ``run()`` reads frames until the socket closes: replies resolve the matching ``call``,
    ``token`` pushes are written to ``out`` as they come, ``done``/``error`` are queued for
    :meth:`answer`.
    """

    def __init__(self, ws: ClientConnection, topic: str, out: TextIO) -> None:
        self.ws, self.topic, self.out = ws, topic, out
        self.join_ref: str | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ended: asyncio.Queue[Ended | None] = asyncio.Queue()

    async def call(self, event: str, payload: dict[str, Any], topic: str | None = None,
                   ) -> dict[str, Any]:
        """Send ``event`` and return the reply's response; an error reply raises ChatError."""
        ref = str(next(self._refs))
        if event == "phx_join":
            self.join_ref = ref
        join_ref = None if topic == "phoenix" else self.join_ref
        reply = asyncio.get_running_loop().create_future()
        self._pending[ref] = reply
        try:
            await self.ws.send(json.dumps([join_ref, ref, topic or self.topic, event, payload]))
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                answer = await reply
        except TimeoutError:
            raise ChatError(f"no reply to {event!r} within {REPLY_TIMEOUT_S:.0f} s") from None
        except ConnectionClosed:
            raise ChatError("the connection closed") from None
        finally:
            self._pending.pop(ref, None)
        if answer.get("status") != "ok":
            raise ChatError(_describe(event, answer.get("response")))
        response: dict[str, Any] = answer.get("response") or {}
        return response

    async def answer(self, request_id: str) -> Ended:
        """Wait for the ``done`` or ``error`` of ``request_id`` (tokens print meanwhile)."""
        while True:
            ended = await self._ended.get()
            if ended is None:
                raise ChatError("the server closed the connection mid-answer")
            if ended.payload.get("request_id") == request_id:
                return ended

    async def run(self) -> None:
        """Dispatch incoming frames until the socket closes."""
        try:
            async for raw in self.ws:
                self._dispatch(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self._ended.put_nowait(None)
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(ChatError("the connection closed"))

    def _dispatch(self, frame: list[Any]) -> None:
        _join_ref, ref, topic, event, payload = frame
        if event == "phx_reply":
            reply = self._pending.get(ref)
            if reply is not None and not reply.done():
                reply.set_result(payload)
        elif topic != self.topic:
            return
        elif event == "token":
            self.out.write(payload["delta"])
            self.out.flush()
        elif event in ("done", "error"):
            self._ended.put_nowait(Ended(event, payload))
        elif event == "phx_error":  # the channel crashed on the server
            self.out.write(f"\n[{self.topic} failed: {payload.get('reason')}]\n")
            self._ended.put_nowait(None)

    async def heartbeat(self, every: float) -> None:
        """Send a heartbeat every ``every`` seconds; a missing reply closes the socket."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.call("heartbeat", {}, topic="phoenix")
            except ChatError as error:
                self.out.write(f"\n[heartbeat failed: {error}; closing]\n")
                await self.ws.close()
                return


def usage_line(done: dict[str, Any]) -> str:
    """``(usage: P prompt + C completion tokens · provider/model)`` of a ``done`` payload."""
    usage = done.get("usage", {})
    return (f"  (usage: {usage.get('prompt_tokens', 0)} prompt + "
            f"{usage.get('completion_tokens', 0)} completion tokens · "
            f"{done.get('provider')}/{done.get('model')})")


def totals_line(usage: dict[str, Any]) -> str:
    """This session's and the user's totals from a ``usage`` reply."""
    def one(name: str) -> str:
        t = usage.get(name, {})
        return (f"{name}: {t.get('requests', 0)} requests, {t.get('prompt_tokens', 0)} prompt "
                f"+ {t.get('completion_tokens', 0)} completion tokens, "
                f"{t.get('errors', 0)} errors")
    return "  " + "; ".join(one(name) for name in ("session", "user"))


async def handle_line(channel: PhoenixChannel, line: str, out: TextIO) -> bool:
    """Act on one input line; False once the user asked to quit."""
    if line == "/quit":
        return False
    if line == "/usage":
        out.write(totals_line(await channel.call("usage", {})) + "\n")
    elif line.startswith("/model"):
        provider, _, model = line.removeprefix("/model").strip().partition(":")
        if not provider or not model:
            out.write("  usage: /model provider:model (for example /model echo:echo-1)\n")
            return True
        config = await channel.call("set_preference", {"provider": provider, "model": model})
        out.write(f"  model: {config['provider']}/{config['model']}\n")
    else:
        request_id = (await channel.call("message", {"content": line}))["request_id"]
        ended = await channel.answer(request_id)
        if ended.event == "done":
            out.write("\n" + usage_line(ended.payload) + "\n")
        else:
            detail = ended.payload.get("detail")
            said = f"{ended.payload.get('reason')}" + (f": {detail}" if detail else "")
            out.write(f"\n  [error: {said}]\n")
    return True


async def _first(pending: Awaitable[T], *others: asyncio.Future[Any]) -> T | None:
    """``pending``'s result, or None (``pending`` cancelled) when one of ``others`` ends first."""
    task = asyncio.ensure_future(pending)
    done, _ = await asyncio.wait([task, *others], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait([task])
    return None


@asynccontextmanager
async def stdin_lines() -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A function reading the next line of standard input ("" at its end), without blocking.

    A pipe or a terminal is read through the event loop (so Ctrl-C is not stuck behind a
    read), and put back in blocking mode afterwards for the shell; a regular file is read as is.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    fd = sys.stdin.fileno()
    # The transport closes what it reads at the end: give it a duplicate, keep stdin open.
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except ValueError:  # a regular file: reading it never waits
        pipe.close()
        yield lambda: asyncio.to_thread(sys.stdin.readline)
        return

    async def next_line() -> str:
        return (await reader.readline()).decode(errors="replace")
    try:
        yield next_line
    finally:
        transport.close()  # closes the duplicate
        os.set_blocking(fd, True)  # the duplicate shared the file's non-blocking flag


async def chat(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Join, then chat line by line until EOF, /quit, Ctrl-C or the server goes away."""
    encoded = base64.urlsafe_b64encode(args.token.encode()).decode().rstrip("=")
    url = args.url + ("&" if "?" in args.url else "?") + "vsn=2.0.0"
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, request_stop)
    protocols = [Subprotocol("phoenix"), Subprotocol(AUTH_PREFIX + encoded)]
    async with connect(url, subprotocols=protocols) as ws:
        channel = PhoenixChannel(ws, f"conversation:{args.conversation}", out)
        async with asyncio.TaskGroup() as tasks:
            reader = tasks.create_task(channel.run())
            beat = tasks.create_task(channel.heartbeat(args.heartbeat))
            try:
                return await _session(channel, args, out, stop, reader)
            except ChatError as error:
                print(f"beamish: {error}", file=sys.stderr)
                return 1
            finally:
                beat.cancel()
                await ws.close()


async def _session(channel: PhoenixChannel, args: argparse.Namespace, out: TextIO,
                   stop: asyncio.Future[None], reader: asyncio.Task[None]) -> int:
    """Chat until the input ends, the user quits or the server goes away; leave if we can."""
    params = {"session_id": args.session} if args.session else {}
    joined = await channel.call("phx_join", params)
    out.write(f"joined {channel.topic} (session {joined['session_id']})\n")
    prompt = "> " if sys.stdin.isatty() else ""
    async with stdin_lines() as next_line:
        while True:
            out.write(prompt)
            out.flush()
            raw = await _first(next_line(), stop, reader)
            if not raw:  # end of input, Ctrl-C, or the server closed the socket
                break
            line = raw.strip()
            # Ctrl-C mid-answer stops waiting; leaving the channel stops the stream.
            if line and not await _first(handle_line(channel, line, out), stop, reader):
                break
    if reader.done():
        out.write("\nthe server closed the connection\n")
        return 1
    await channel.call("phx_leave", {})
    out.write("\nleft the conversation\n")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; see the module docstring."""
    parser = argparse.ArgumentParser(description="Chat with beamish over its WebSocket.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"socket URL [{DEFAULT_URL}]")
    parser.add_argument("--token", default=os.environ.get("BEAMISH_TOKEN"),
                        help="your token [$BEAMISH_TOKEN]")
    parser.add_argument("--conversation", default="default", help="conversation id [default]")
    parser.add_argument("--session", default=None, help="session id to resume or create")
    parser.add_argument("--heartbeat", type=float, default=HEARTBEAT_S, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("no token: pass --token or set BEAMISH_TOKEN "
                     "(make one with: beamish token create --user NAME)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chat; the exit status is 0 after a clean leave."""
    args = parse_args(argv)
    try:
        return asyncio.run(chat(args))
    except (OSError, WebSocketException) as error:
        print(f"beamish: cannot talk to {args.url}: {error}", file=sys.stderr)
    return 1


def _describe(event: str, response: Any) -> str:
    if isinstance(response, dict) and "reason" in response:
        detail = f": {response['detail']}" if response.get("detail") else ""
        return f"{event} refused ({response['reason']}{detail})"
    return f"{event} refused: {response!r}"


if __name__ == "__main__":
    sys.exit(main())
