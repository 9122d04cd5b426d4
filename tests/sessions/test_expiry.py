"""IdleQueue: expiry and eviction order, requests in flight, cost of a sweep."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beamish.sessions.expiry import IdleQueue, SessionCensus


def _queue(*keys: str, ttl: float = 10.0) -> IdleQueue[str]:
    queue: IdleQueue[str] = IdleQueue(ttl)
    for at, key in enumerate(keys):
        queue.add(key, float(at))
    return queue


def test_ttl_must_be_positive() -> None:
    """A zero or negative TTL is refused."""
    with pytest.raises(ValueError, match="ttl must be positive"):
        IdleQueue[str](0)


def test_expires_exactly_at_ttl_oldest_first() -> None:
    """A session idle for exactly the TTL expires; the result is oldest first."""
    queue = _queue("a", "b", "c")
    assert queue.pop_expired(now=10.9) == ["a"]
    assert queue.pop_expired(now=12.0) == ["b", "c"]
    assert len(queue) == 0


def test_touch_moves_a_session_to_the_back() -> None:
    """Activity renews a session's lease and its place in eviction order."""
    queue = _queue("a", "b", "c")
    queue.touch("a", 5.0)
    assert queue.pop_expired(now=12.0) == ["b", "c"]
    assert queue.last_active("a") == 5.0
    assert queue.next_expiry() == 15.0


def test_nothing_expired_leaves_everything() -> None:
    """A sweep before any deadline returns nothing and removes nothing."""
    queue = _queue("a", "b")
    assert queue.pop_expired(now=9.99) == []
    assert len(queue) == 2


def test_limit_spreads_a_big_expiry() -> None:
    """With a limit, a sweep takes at most that many, oldest first."""
    queue = _queue("a", "b", "c", "d")
    assert queue.pop_expired(now=100.0, limit=3) == ["a", "b", "c"]
    assert queue.pop_expired(now=100.0, limit=3) == ["d"]


def test_busy_sessions_never_expire_or_get_evicted() -> None:
    """A session with a request in flight is skipped by expiry and eviction alike."""
    queue = _queue("a", "b", "c")
    queue.begin("a")
    assert queue.pop_expired(now=1000.0) == ["b", "c"]
    assert queue.pop_least_recent(5) == []
    assert "a" in queue
    assert queue.idle_count == 0


def test_end_stamps_the_end_of_the_request() -> None:
    """Idleness counts from the end of the last request, not its start."""
    queue = _queue("a")
    queue.begin("a")
    queue.end("a", 50.0)
    assert queue.pop_expired(now=59.0) == []
    assert queue.pop_expired(now=60.0) == ["a"]


def test_overlapping_requests_keep_a_session_busy_until_the_last_ends() -> None:
    """Two requests in flight: the session is idle only after both end."""
    queue = _queue("a")
    queue.begin("a")
    queue.begin("a")
    queue.end("a", 5.0)
    assert queue.last_active("a") is None
    queue.touch("a", 6.0)  # activity of a busy session changes nothing
    queue.end("a", 7.0)
    assert queue.last_active("a") == 7.0


def test_evicts_least_recently_active_first() -> None:
    """Eviction takes idle sessions in order of last activity."""
    queue = _queue("a", "b", "c")
    queue.touch("a", 9.0)
    assert queue.pop_least_recent(2) == ["b", "c"]
    assert queue.pop_least_recent(2) == ["a"]


def test_removed_sessions_are_forgotten() -> None:
    """Closing removes a session whether idle or busy; a late end is ignored."""
    queue = _queue("a", "b")
    queue.begin("b")
    queue.remove("a")
    queue.remove("b")
    queue.end("b", 3.0)
    queue.remove("unknown")
    assert len(queue) == 0
    assert queue.next_expiry() is None


def test_add_of_a_busy_session_keeps_it_busy() -> None:
    """Re-adding a session that has a request in flight does not make it idle."""
    queue = _queue("a")
    queue.begin("a")
    queue.add("a", 4.0)
    assert queue.idle_count == 0


def test_sweep_cost_is_proportional_to_what_expires() -> None:
    """Expiring 3 of 10,000 sessions touches only those 3 (and the first fresh one)."""
    queue: IdleQueue[str] = IdleQueue(10.0)
    for n in range(10_000):
        queue.add(f"s{n}", float(n))
    seen: list[str] = []

    class Spy(dict[str, float]):
        """The queue's table, recording each entry a sweep visits."""

        def items(self) -> Iterator[tuple[str, float]]:  # type: ignore[override]
            for pair in super().items():
                seen.append(pair[0])
                yield pair

    queue._idle = Spy(queue._idle)
    assert queue.pop_expired(now=12.0) == ["s0", "s1", "s2"]
    assert seen == ["s0", "s1", "s2", "s3"]


def _keyed(*keys: tuple[str, str]) -> IdleQueue[tuple[str, str]]:
    queue: IdleQueue[tuple[str, str]] = IdleQueue(10.0)
    for at, key in enumerate(keys):
        queue.add(key, float(at))
    return queue


def test_eviction_prefers_what_prefer_accepts_then_the_least_recent() -> None:
    """Sessions of a user at their cap go first, least recent first, then anyone's."""
    queue = _keyed(("bob", "b1"), ("ada", "a1"), ("bob", "b2"), ("ada", "a2"))
    heavy = {"ada"}
    assert queue.pop_least_recent(1, lambda key: key[0] in heavy) == [("ada", "a1")]
    assert queue.pop_least_recent(2, lambda key: key[0] in heavy) == [("ada", "a2"),
                                                                        ("bob", "b1")]
    assert queue.pop_least_recent(5, lambda key: key[0] in heavy) == [("bob", "b2")]


def test_own_eviction_takes_the_users_least_recent_idle_session_only() -> None:
    """pop_least_recent_of looks at the given keys only, skips busy ones, None if none idle."""
    queue = _keyed(("bob", "b1"), ("ada", "a1"), ("ada", "a2"))
    queue.begin(("ada", "a1"))
    ada = [("ada", "a1"), ("ada", "a2")]
    assert queue.pop_least_recent_of(ada) == ("ada", "a2")
    assert queue.pop_least_recent_of(ada) is None  # a1 is busy, a2 gone
    assert queue.pop_least_recent(5) == [("bob", "b1")]


def test_the_census_counts_each_users_sessions_and_who_is_at_the_cap() -> None:
    """Users at their cap are heavy; a closed session takes them below it again."""
    census = SessionCensus(cap=2)
    for user in ("ada", "ada", "bob"):
        census.opened(user)
    assert (census.count("ada"), census.count("bob"), census.count("eve")) == (2, 1, 0)
    assert (census.at_cap("ada"), census.at_cap("bob")) == (True, False)
    assert census.heavy == {"ada"}
    census.closed("ada")
    assert (census.at_cap("ada"), census.heavy) == (False, frozenset())
    census.closed("bob")
    assert census.count("bob") == 0
    with pytest.raises(ValueError, match="at least 1"):
        SessionCensus(cap=0)
