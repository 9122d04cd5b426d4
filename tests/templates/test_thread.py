"""The worker thread of a render: results, errors, and the interrupt past the deadline."""

from __future__ import annotations

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

