"""``ChildProcess``: a spawned child that serves requests over a pipe.

The benchmarks' load generators and fake upstream run in children of their own, so their
CPU is not the measured server's: the child runs ``target(pipe)``, which receives requests
and sends one answer each until it receives None.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


def raise_file_limit() -> None:
    """Let this process open as many files (sockets) as its hard limit allows."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ChildProcess:
    """``target(pipe)`` in a spawned daemon process; ``await ask(request)`` for an answer."""

    def __init__(self, target: Callable[[Connection], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=target, args=(child,), daemon=True)
        self._process.start()
        child.close()

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    def send(self, request: Any) -> None:
        """Send ``request`` without waiting for an answer."""
        self._pipe.send(request)

    def receive(self) -> Any:
        """The child's next message (blocking)."""
        return self._pipe.recv()

    async def ask(self, request: Any) -> dict[str, Any]:
        """Send ``request``; the child's answer (waited for off the event loop)."""
        self._pipe.send(request)
        answer: dict[str, Any] = await asyncio.to_thread(self._pipe.recv)
        return answer

    def close(self) -> None:
        """Tell the child to stop (None); kill it if it has not within 30 s (or is gone)."""
        try:
            self._pipe.send(None)
            self._process.join(timeout=30)
        except (BrokenPipeError, ConnectionResetError):  # it died: nothing to tell
            pass
        finally:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._pipe.close()
