"""Run a function in a thread of its own, and stop it at a deadline whatever it does.

A render checks its deadline at every call, attribute and item access the sandbox sees,
but a loop that makes none (``{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}``
over a given list) never reaches a check. The last guard is CPython's documented
``PyThreadState_SetAsyncExc``: it raises an exception in another thread, which that thread
sees at its next bytecode. ``run_in_thread`` raises ``ThreadInterrupted`` in its worker once
``timeout`` has passed; should the worker be stuck in one long C call (which the sandbox's
size caps exist to prevent), the caller still returns after ``grace`` more seconds and the
thread, a daemon, is left to end on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

GRACE_S = 1.0
"""How long past the deadline the caller waits for an interrupted worker to report."""


class ThreadInterrupted(BaseException):
    """Raised into a worker thread whose deadline passed (a BaseException, so no
    ``except Exception`` in the work can swallow it)."""


def interrupt_thread(ident: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in the thread ``ident`` at its next bytecode; False if there is no
    such thread (it has ended)."""
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    hit = set_async(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
    if hit > 1:  # never for a real thread id; undo rather than interrupt several threads
        set_async(ctypes.c_ulong(ident), None)
    return bool(hit == 1)


async def run_in_thread(work: Callable[[], T], *, timeout: float,
                        grace: float = GRACE_S) -> T:
    """``work()`` in a new daemon thread; its result, or what it raised.

    Raises:
        ThreadInterrupted: ``timeout`` seconds passed first (the worker was interrupted).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    # The worker's progress, read and written under ``lock``: the interrupt is sent only
    # between ``started`` and ``finished``, where the worker catches it, never before (it
    # would land in the thread's own start-up code and escape it) nor after.
    lock = threading.Lock()
    started = finished = abandoned = False

    def settle(result: T | None, error: BaseException | None) -> None:
        if not done.done():  # done: the caller was cancelled and reads nothing
            if error is None:
                done.set_result(result)  # type: ignore[arg-type]
            else:
                done.set_exception(error)

    def worker() -> None:
        nonlocal started, finished
        outcome: tuple[T | None, BaseException | None] | None = None
        try:
            with lock:
                started = True
                skip = abandoned
            if skip:  # the deadline passed before the thread ran at all
                outcome = (None, ThreadInterrupted())
            else:
                try:
                    outcome = (work(), None)
                except BaseException as raised:  # handed to the awaiting caller, never lost
                    outcome = (None, raised)
            with lock:
                finished = True
        except ThreadInterrupted as late:
            # The interrupt (sent once) landed outside ``work``, just before or after it:
            # the caller gets what ``work`` gave, if it got that far.
            outcome = outcome or (None, late)
        # The loop may have closed while a worker past its grace ran on.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    thread = threading.Thread(target=worker, name="beamish-template-render", daemon=True)
    thread.start()
    try:
        return await asyncio.wait_for(asyncio.shield(done), timeout)
    except TimeoutError:
        pass
    except asyncio.CancelledError:
        done.cancel()  # what the stopped worker reports is for nobody: never "unretrieved"
        raise
    finally:  # past the deadline, or the caller was cancelled: stop the work
        with lock:
            if not started:
                abandoned = True
            elif not finished and thread.ident is not None:
                interrupt_thread(thread.ident, ThreadInterrupted)
    try:
        return await asyncio.wait_for(done, grace)
    except TimeoutError:
        raise ThreadInterrupted from None

__all__ = ["GRACE_S", "ThreadInterrupted", "interrupt_thread", "run_in_thread"]
