"""The janitor: TTL expiry counted from the last request, eviction at the session limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamish.application import Application
from beamish.runtime import call
from beamish.sessions.errors import SessionLimitError, SessionNotFoundError
from beamish.sessions.models import JanitorReport
from beamish.sessions.services import JANITOR
from tests._clock import FakeClock
from tests.sessions.conftest import make_settings

pytestmark = pytest.mark.anyio


async def _janitor(runtime: Application, request: object) -> object:
    return await call(runtime.services.whereis(JANITOR), request)


async def test_idle_sessions_expire_at_the_ttl_oldest_first(runtime: Application,
                                                            clock: FakeClock) -> None:
    """A sweep stops sessions idle for the TTL, oldest first, and leaves fresher ones."""
    await runtime.sessions.open("old", "ada")
    clock.advance(30)
    await runtime.sessions.open("newer", "bob")
    clock.advance(30)  # "old" idle 60 s (the TTL), "newer" 30 s
    assert await _janitor(runtime, "sweep") == ["old"]
    with pytest.raises(SessionNotFoundError):
        await runtime.sessions.get("old")
    clock.advance(30)
    assert await _janitor(runtime, "sweep") == ["newer"]
    assert runtime.sessions.count() == 0


async def test_activity_renews_the_lease(runtime: Application, clock: FakeClock) -> None:
    """A request resets the session's idle time."""
    await runtime.sessions.open("s1", "ada")
    clock.advance(50)
    await runtime.sessions.enhance("s1")
    clock.advance(50)
    assert await _janitor(runtime, "sweep") == []
    clock.advance(10)
    assert await _janitor(runtime, "sweep") == ["s1"]


async def test_expired_usage_stays_in_the_ledger(runtime: Application, clock: FakeClock) -> None:
    """Expiring a session loses none of its acknowledged usage."""
    await runtime.sessions.open("s1", "ada")
    await runtime.sessions.record_usage("s1", provider="echo", model="e", prompt_tokens=4)
    clock.advance(120)
    await _janitor(runtime, "sweep")
    assert (await runtime.store.session_totals("ada", "s1")).prompt_tokens == 4


async def test_the_report_counts_sweeps_expiries_and_evictions(runtime: Application,
                                                               clock: FakeClock) -> None:
    """The report says what the janitor did."""
    for sid in ("a", "b", "c"):
        await runtime.sessions.open(sid, "ada")
    clock.advance(60)
    await _janitor(runtime, "sweep")
    report = await _janitor(runtime, "report")
    assert isinstance(report, JanitorReport)
    assert (report.expired, report.last_sweep_expired, report.evicted) == (3, 3, 0)
    assert (report.open_sessions, report.idle_sessions) == (0, 0)


async def test_limit_evicts_the_least_recently_active_idle_session(
        tmp_path: Path, clock: FakeClock) -> None:
    """At max_sessions, opening another evicts the idle session active longest ago."""
    async with Application(make_settings(tmp_path, max_sessions=2), clock=clock) as rt:
        await rt.sessions.open("a", "ada")
        clock.advance(1)
        await rt.sessions.open("b", "ada")
        clock.advance(1)
        await rt.sessions.enhance("a")  # now "b" is the least recently active
        await rt.sessions.open("c", "ada")
        assert [sid for sid, _ in rt.sessions.open_sessions()] == ["a", "c"]
        report = await call(rt.services.whereis(JANITOR), "report")
        assert report.evicted == 1


async def test_busy_sessions_are_never_evicted(tmp_path: Path, clock: FakeClock) -> None:
    """With every session busy, opening one more fails clearly instead of evicting."""
    async with Application(make_settings(tmp_path, max_sessions=1), clock=clock) as rt:
        await rt.sessions.open("a", "ada")
        rt.services.idle.begin(("ada", "a"))  # a request of "a" is in flight
        with pytest.raises(SessionLimitError, match="all 1 sessions are busy"):
            await rt.sessions.open("b", "bob")
        clock.advance(3600)
        assert await call(rt.services.whereis(JANITOR), "sweep") == []
        rt.services.idle.end(("ada", "a"), clock())
        await rt.sessions.open("b", "bob")
        assert [sid for sid, _ in rt.sessions.open_sessions()] == ["b"]


async def test_periodic_sweeps_run_by_themselves(tmp_path: Path, clock: FakeClock) -> None:
    """With a short sweep interval, the janitor expires sessions without being asked."""
    settings = make_settings(tmp_path, sweep_interval_s=0.01)
    async with Application(settings, clock=clock) as rt:
        await rt.sessions.open("s1", "ada")
        clock.advance(61)
        report = await call(rt.services.whereis(JANITOR), "report")
        while report.expired == 0:  # each call waits for the janitor's current message
            report = await call(rt.services.whereis(JANITOR), "report")
        assert rt.sessions.count() == 0


async def test_a_user_at_their_cap_evicts_their_own_least_recent_session(
        tmp_path: Path, clock: FakeClock) -> None:
    """Opening beyond max_sessions_per_user stops that user's least recently active idle
    session; another user's sessions, older still, stay open."""
    async with Application(make_settings(tmp_path, max_sessions_per_user=2),
                           clock=clock) as rt:
        await rt.sessions.open("b1", "bob")
        for sid in ("a1", "a2"):
            clock.advance(1)
            await rt.sessions.open(sid, "ada")
        clock.advance(1)
        await rt.sessions.enhance("a1", user_id="ada")  # now a2 is ada's least recent
        await rt.sessions.open("a3", "ada")
        assert rt.sessions.open_sessions() == [("a1", "ada"), ("a3", "ada"), ("b1", "bob")]
        report = await call(rt.services.whereis(JANITOR), "report")
        assert report.evicted == 1


async def test_a_user_with_every_session_busy_is_refused_not_another_user(
        tmp_path: Path, clock: FakeClock) -> None:
    """At the per-user cap with all of theirs busy, the user gets a SessionLimitError that
    names them; other users open sessions as before."""
    async with Application(make_settings(tmp_path, max_sessions_per_user=1),
                           clock=clock) as rt:
        await rt.sessions.open("a1", "ada")
        rt.services.idle.begin(("ada", "a1"))
        with pytest.raises(SessionLimitError, match=r"sessions of user 'ada' are busy.*"
                                                    r"MAX_SESSIONS_PER_USER"):
            await rt.sessions.open("a2", "ada")
        await rt.sessions.open("a2", "bob")
        assert rt.sessions.open_sessions() == [("a1", "ada"), ("a2", "bob")]


async def test_global_pressure_evicts_a_user_at_their_cap_first(
        tmp_path: Path, clock: FakeClock) -> None:
    """At max_sessions, the idle session of the user holding their cap goes, even though
    another user's is older."""
    settings = make_settings(tmp_path, max_sessions=3, max_sessions_per_user=2)
    async with Application(settings, clock=clock) as rt:
        await rt.sessions.open("b1", "bob")
        for sid in ("a1", "a2"):
            clock.advance(1)
            await rt.sessions.open(sid, "ada")
        await rt.sessions.open("e1", "eve")
        assert rt.sessions.open_sessions() == [("a2", "ada"), ("b1", "bob"), ("e1", "eve")]


async def test_a_held_session_is_never_evicted_for_another_user(
        tmp_path: Path, clock: FakeClock) -> None:
    """A session with a joined client (hold) is not evicted at max_sessions; released, it
    is idle again and may go."""
    async with Application(make_settings(tmp_path, max_sessions=1), clock=clock) as rt:
        await rt.sessions.open("a1", "ada")
        hold = rt.sessions.hold("a1", user_id="ada")
        with pytest.raises(SessionLimitError, match="all 1 sessions are busy"):
            await rt.sessions.open("b1", "bob")
        clock.advance(3600)
        assert await call(rt.services.whereis(JANITOR), "sweep") == []
        hold.release()
        hold.release()  # once counts
        await rt.sessions.open("b1", "bob")
        assert rt.sessions.open_sessions() == [("b1", "bob")]
