"""``UsageCounters``: each session's usage totals, counted without a message to its context.

A session context owns one :class:`UsageCounter`, part of its state: it starts it (from the
ledger, for a resumed or restarted session) and publishes it here under its ``SessionKey`` (an
:class:`~beamish.sessions.tables.OwnedTable`). A call of the session takes
the counter when it starts, once the context has answered its preferences (so a rebuilt
context has set its counter from the ledger by then), and adds its usage event to it once
the event is durable — synchronously, where a cast would wake the context for every request.
The entry goes when the context exits; a call that took the counter of a context that has
exited since adds to a counter nobody reads, as a cast to it would have been dropped.
"""

from __future__ import annotations

from beamish.sessions.expiry import SessionKey
from beamish.sessions.tables import OwnedTable
from beamish.store import UsageEvent, UsageTotals


class UsageCounter:
    """One session's usage totals, added to in place."""

    __slots__ = ("completion_tokens", "errors", "prompt_tokens", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, event: UsageEvent) -> None:
        """Count one durable event."""
        self.requests += 1
        self.errors += event.status == "error"
        self.prompt_tokens += event.prompt_tokens
        self.completion_tokens += event.completion_tokens

    def set(self, totals: UsageTotals) -> None:
        """Start again from ``totals`` (what the ledger knows of the session)."""
        self.requests = totals.requests
        self.errors = totals.errors
        self.prompt_tokens = totals.prompt_tokens
        self.completion_tokens = totals.completion_tokens

    def totals(self) -> UsageTotals:
        """The totals so far."""
        return UsageTotals(requests=self.requests, errors=self.errors,
                           prompt_tokens=self.prompt_tokens,
                           completion_tokens=self.completion_tokens)


class UsageCounters(OwnedTable[SessionKey, UsageCounter]):
    """Session key → its context's ``UsageCounter`` (see the module docs)."""

    __slots__ = ()
