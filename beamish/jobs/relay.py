"""Job events across processes: what crosses, and how it is packed into NOTIFY payloads —
without I/O.

Processes sharing one PostgreSQL queue each publish the events of the jobs they run, so a
job run in one process (or rescued there) would reach only that process's listeners — and
its user's ``user:<id>`` channel is likely joined on another. So every event published is
also sent over NOTIFY on the store's job events channel (the ``Notifier`` does it, in
batches: ``Outbox``), and each process's notifier hands the events of *other* processes to
its own listeners (not logging them again: the line was written where the event happened).
SQLite has one process, and needs none of this.

A payload is the sender's node name (its ``leased_by``), a newline, then one event a line as
compact JSON, at most ``MAX_PAYLOAD_BYTES`` in all (NOTIFY refuses 8000 bytes or more): a
batch takes as many payloads as it needs. What crosses is content-free, as the log line is:
an event's error message (which can quote what the user sent) is replaced by its kind and
reason as one string (``event_log.error_code``), and ``error_kind`` and ``error_reason``
cross as they are; the full message stays in the output row.

Options: ``MAX_PAYLOAD_BYTES`` [7000]; ``Outbox`` keeps at most ``MAX_PENDING`` [10000]
events while a send runs (more are dropped, counted in ``dropped``: events are
notifications, and the output row holds the state). The next send says how many were
dropped since the one before, in one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from pydantic import ValidationError

from beamish.jobs.event_log import error_code
from beamish.jobs.models import JobEvent

log = logging.getLogger("beamish.jobs")

MAX_PAYLOAD_BYTES: Final = 7000
MAX_PENDING: Final = 10_000


def encode(node: str, events: Sequence[JobEvent]) -> list[str]:
    """The payloads that carry ``events`` (in order) from ``node``."""
    header = node + "\n"
    budget = MAX_PAYLOAD_BYTES - len(header.encode())
    payloads: list[str] = []
    lines: list[str] = []
    size = 0
    for event in events:
        line = _crossing(event).model_dump_json(exclude_none=True)
        length = len(line.encode()) + 1
        if length > budget:  # field bounds keep an event far below it; never send a cut one
            log.warning("job event %s of job %s is too large to notify; left out",
                        event.event, event.job_id)
            continue
        if size + length > budget:
            payloads.append(header + "\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += length
    if lines:
        payloads.append(header + "\n".join(lines))
    return payloads


def decode(payload: str, *, node: str) -> list[JobEvent]:
    """The events of ``payload``, unless ``node`` sent it (none then: they were delivered
    where they happened); lines that are not events are left out, with a warning."""
    sender, _, body = payload.partition("\n")
    if sender == node or not body:
        return []
    events: list[JobEvent] = []
    for line in body.split("\n"):
        try:
            events.append(JobEvent.model_validate_json(line))
        except ValidationError:
            log.warning("a job event notified by %r is not one; left out", sender[:80])
    return events


def _crossing(event: JobEvent) -> JobEvent:
    """``event`` as it crosses: its error message replaced by the error's kind and
    reason."""
    if event.error is None:
        return event
    return event.model_copy(update={"error": error_code(event)})


class Outbox:
    """Events waiting for the notifier's next send: ``put`` by publishers, ``take`` by the
    notifier. ``wake`` is called when the first event arrives after a ``take``, to have the
    notifier send them (once: what arrives until it does goes in the same send)."""

    def __init__(self, wake: Callable[[], object]) -> None:
        self._wake = wake
        self._events: list[JobEvent] = []
        self._due = False
        self.dropped = 0
        """Events left out because ``MAX_PENDING`` were waiting (in all)."""
        self._dropped_since_take = 0

    def put(self, event: JobEvent) -> None:
        """Queue ``event`` for the next send."""
        if len(self._events) >= MAX_PENDING:
            self.dropped += 1
            self._dropped_since_take += 1
            return
        self._events.append(event)
        if not self._due:
            self._due = True
            self._wake()

    def take(self) -> list[JobEvent]:
        """Every event waiting, in order; the next ``put`` wakes the notifier again. Events
        dropped since the last take are logged, by count, once (a warning)."""
        events, self._events = self._events, []
        self._due = False
        if self._dropped_since_take:
            log.warning("%d job events were not sent to other processes: more than %d "
                        "waited for one send (their listeners there miss them; the "
                        "outputs hold the state)", self._dropped_since_take, MAX_PENDING)
            self._dropped_since_take = 0
        return events


__all__ = ["MAX_PAYLOAD_BYTES", "MAX_PENDING", "Outbox", "decode", "encode"]
