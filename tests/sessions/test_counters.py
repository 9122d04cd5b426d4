"""UsageCounters: the contexts' usage totals, published, counted into and withdrawn."""

from __future__ import annotations

from beamish.sessions.counters import UsageCounter, UsageCounters
from beamish.store import UsageEvent, UsageTotals

S1 = ("ada", "s1")


def _event(status: str = "ok") -> UsageEvent:
    return UsageEvent.model_validate({
        "request_id": "r", "session_id": "s1", "user_id": "ada", "provider": "echo",
        "model": "echo-1", "prompt_tokens": 3, "completion_tokens": 4, "status": status})


def test_a_counter_adds_events_and_restarts_from_totals() -> None:
    """add counts requests, errors and tokens; set starts again from the ledger's totals."""
    counter = UsageCounter()
    counter.add(_event())
    counter.add(_event("error"))
    assert counter.totals() == UsageTotals(requests=2, errors=1, prompt_tokens=6,
                                           completion_tokens=8)
    counter.set(UsageTotals(requests=5, errors=0, prompt_tokens=1, completion_tokens=2))
    counter.add(_event())
    assert counter.totals() == UsageTotals(requests=6, errors=0, prompt_tokens=4,
                                           completion_tokens=6)


def test_a_published_counter_is_found_until_its_owner_withdraws_it() -> None:
    """A withdrawal by an older context leaves the newer one's counter published."""
    table = UsageCounters()
    old, new = UsageCounter(), UsageCounter()
    table.publish(S1, old)
    assert table.get(S1) is old
    table.publish(S1, new)  # a restarted context, same session id
    table.withdraw(S1, old)  # the old one's exit, reported late
    assert table.get(S1) is new
    table.withdraw(S1, new)
    assert (len(table), table.get(S1)) == (0, None)
