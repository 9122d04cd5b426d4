"""The worker thread of a render: results, errors, and the interrupt past the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading

import pytest

from beamish.templates._thread import ThreadInterrupted, interrupt_thread, run_in_thread

pytestmark = pytest.mark.anyio


def test_interrupt_stops_a_busy_loop_at_its_next_bytecode() -> None:
    """A thread spinning in pure Python ends with the exception raised into it."""
    started = threading.Event()
    seen: list[BaseException] = []

    def spin() -> None:
        started.set()
        try:
            while True:
                pass
        except ThreadInterrupted as error:
            seen.append(error)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    started.wait()
    assert thread.ident is not None
    assert interrupt_thread(thread.ident, ThreadInterrupted)
    thread.join()
    assert [type(e) for e in seen] == [ThreadInterrupted]


def test_interrupting_a_thread_that_ended_finds_nobody() -> None:
    """An ended thread's id is not interrupted (False), and nothing else is."""
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    assert thread.ident is not None
    assert not interrupt_thread(thread.ident, ThreadInterrupted)


async def test_the_result_and_errors_of_the_work_come_back() -> None:
    """What the work returns is returned; what it raises is raised."""
    assert await run_in_thread(lambda: threading.current_thread().name, timeout=5) == (
        "beamish-template-render")

    def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await run_in_thread(fail, timeout=5)


async def test_work_past_its_deadline_is_interrupted() -> None:
    """A loop that never returns is stopped and reported as ThreadInterrupted."""
    stopped = threading.Event()

    def forever() -> None:
        try:
            while True:
                pass
        finally:
            stopped.set()

    # Long enough for the thread to have entered the loop (else the interrupt lands before
    # it, and stopped is never set) on a loaded machine.
    with pytest.raises(ThreadInterrupted):
        await run_in_thread(forever, timeout=0.5)
    assert stopped.wait(timeout=5)


async def test_work_stuck_in_a_c_call_still_lets_the_caller_go() -> None:
    """Blocked where no bytecode runs, the worker is left behind after the grace period."""
    release = threading.Event()
    with pytest.raises(ThreadInterrupted):
        await run_in_thread(release.wait, timeout=0.05, grace=0.05)
    release.set()


async def test_a_deadline_as_the_thread_starts_never_escapes_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline of 0 passes while the worker thread is starting, over and over (the
    interpreter switching threads as often as it can): each call ends with the work's
    result or ThreadInterrupted, and no exception escapes a thread (an interrupt sent
    before the worker ran its own code used to land in the thread's start-up)."""
    escaped: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_type))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(1000):
            with contextlib.suppress(ThreadInterrupted):
                assert await run_in_thread(lambda: 1, timeout=0, grace=1.0) == 1
    finally:
        sys.setswitchinterval(switch)
    assert escaped == []


async def test_a_cancelled_caller_leaves_no_exception_unretrieved() -> None:
    """A render whose caller is cancelled is interrupted; what its worker then reports is
    dropped, not left in a future nobody reads (asyncio would log it as never retrieved)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    entered, stopped = threading.Event(), threading.Event()

    def spin() -> None:
        try:
            entered.set()
            while True:
                pass
        finally:
            stopped.set()

    try:
        task = asyncio.ensure_future(run_in_thread(spin, timeout=60))
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(stopped.wait, 10)
        for worker in threading.enumerate():
            if worker.name == "beamish-template-render":
                worker.join(timeout=5)
        await asyncio.sleep(0)  # the worker's report, handed to the loop, is run
        del task
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
